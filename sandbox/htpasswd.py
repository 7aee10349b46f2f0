"""htpasswd files for Distribution's `auth.htpasswd` backend.

Distribution accepts bcrypt entries only (it refuses MD5/SHA1/crypt hashes), so
every entry is bcrypt. Distribution checks the hash on every request, which makes
the cost factor a throughput knob: production wants the default cost, a sandbox
that seeds thousands of manifests may pass a lower one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import bcrypt

DEFAULT_ROUNDS = 10
_USERNAME = re.compile(r"^[A-Za-z0-9._@-]+$")


def hash_password(password: str, rounds: int = DEFAULT_ROUNDS) -> str:
    """A bcrypt hash (`$2b$...`), which Distribution's Go bcrypt accepts."""
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds=rounds)).decode("ascii")


def write_htpasswd(
    path: Path, users: Mapping[str, str], *, rounds: int = DEFAULT_ROUNDS
) -> Path:
    """Write `user:bcrypt-hash` lines to `path` (mode 0600) and return it.

    Usernames are validated because a `:` or newline in one would corrupt the file
    and silently lock users out.
    """
    if not users:
        raise ValueError("an htpasswd file needs at least one user")
    lines = []
    for username, password in users.items():
        if not _USERNAME.match(username):
            raise ValueError(f"invalid htpasswd username {username!r}")
        if not password:
            raise ValueError(f"empty password for htpasswd user {username!r}")
        lines.append(f"{username}:{hash_password(password, rounds)}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.writelines(lines)
    return path
