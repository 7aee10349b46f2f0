"""The GHCR part of the local estate: the GitHub emulator (`sandbox.github_emulator`,
spec-validated) in front of a real `docker-registry` standing in for ghcr.io.

Two owners, so every GHCR rule has something to pass and something to fail:

* `acme-secure` (org): a fine-grained token (read-only, expires in 30 days,
  Administration: read), Actions default `GITHUB_TOKEN` read-only; packages
  `api` (v1.0.0, v1.1.0) and `web` (2.0.0, public and declared public), every
  tag cosign-signed with the estate's release key, both linked to repositories.
* `acme-legacy` (org): a classic PAT without expiry holding `write:packages`
  and `admin:org`, Actions default `write`; `app` (`latest`, `0.9`, unsigned,
  one untagged version, linked) and `tool` (public but not declared public, not
  linked to any repository).

The registry (TLS from the sandbox CA, htpasswd) knows each owner as a user
whose password is that owner's token, so the collector's OCI requests carry
the same GitHub token as its REST requests, as they do at ghcr.io.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sandbox.certs import server_certificate
from sandbox.estate import SANDBOX_BCRYPT_ROUNDS
from sandbox.github_emulator import GitHubState, Owner, Package, Token, Version
from sandbox.images import build_image
from sandbox.process import EmulatorBesideRegistry, free_port, process_start_ticks, spawn_listening
from sandbox.pusher import OciPusher
from sandbox.registry import RegistrySpec, RunningRegistry, env_var_prefix, start_registry
from sandbox.signing import KeyPair, generate_key_pair, signature_for

HOST = "127.0.0.1"
READY_TIMEOUT = 15.0
ESTATE_KEY = Path("keys") / "release.key"
SECURE, LEGACY = "acme-secure", "acme-legacy"


@dataclass(frozen=True)
class _Seed:
    owner: str
    package: str
    tags: tuple[str, ...]
    sign: bool


SEEDS = (
    _Seed(SECURE, "api", ("v1.0.0",), True),
    _Seed(SECURE, "api", ("v1.1.0",), True),
    _Seed(SECURE, "web", ("2.0.0",), True),
    _Seed(LEGACY, "app", ("0.8",), False),  # re-tagged below: becomes the untagged version
    _Seed(LEGACY, "app", ("latest", "0.9"), False),
    _Seed(LEGACY, "tool", ("1.0.0",), False),
)
PACKAGES = {  # (owner, package) -> (visibility, linked repository)
    (SECURE, "api"): ("private", f"{SECURE}/api"),
    (SECURE, "web"): ("public", f"{SECURE}/web"),
    (LEGACY, "app"): ("private", f"{LEGACY}/app"),
    (LEGACY, "tool"): ("public", None),
}


def sandbox_tokens() -> dict[str, Token]:
    """Fresh token values of the documented prefixes, by owner."""
    month = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    return {
        SECURE: Token("fine-grained", (), month, org_admin_read=True),
        LEGACY: Token("classic", ("read:packages", "write:packages", "admin:org")),
    }


def _token_value(token: Token) -> str:
    prefix = {"fine-grained": "github_pat_", "classic": "ghp_", "actions": "ghs_"}[token.kind]
    return prefix + secrets.token_hex(18)


@dataclass
class GhcrEstate(EmulatorBesideRegistry):
    """The emulator and its registry as one sandbox service."""

    name: str
    api_url: str
    registry: RunningRegistry
    ca_file: Path
    tokens: dict[str, str] = field(repr=False)
    pid: int = 0
    start_ticks: int | None = None
    pushed: dict[str, str] = field(default_factory=dict)  # "owner/package:tag" -> digest
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    def token_env(self, owner: str) -> str:
        return f"{env_var_prefix('ghcr-' + owner)}_TOKEN"

    @property
    def targets(self) -> list[dict[str, Any]]:
        def target(owner: str, public: list[str]) -> dict[str, Any]:
            return {
                "name": f"ghcr-{owner}", "kind": "ghcr", "owner": owner, "owner_type": "org",
                "token_env": self.token_env(owner), "api_url": self.api_url, "registry_url": self.registry.url,
                "ca_file": str(self.ca_file), "public_repositories": public,
            }

        return [target(SECURE, ["web"]), target(LEGACY, [])]

    @property
    def env(self) -> dict[str, str]:
        return {self.token_env(owner): value for owner, value in self.tokens.items()}



def seed_registry(registry: RunningRegistry, key: Path) -> tuple[GitHubState, dict[str, str]]:
    """Push (and sign) the seeds; the emulator state describing what was pushed."""
    created = datetime(2026, 6, 1, tzinfo=UTC)
    items, pushed, owners = [], {}, {}
    for login in (SECURE, LEGACY):
        owners[login] = Owner(login, "org", workflow_permissions="read" if login == SECURE else "write")
    for (login, name), (visibility, repo) in PACKAGES.items():
        owners[login].packages[name] = Package(name, visibility, repo)
    for n, seed in enumerate(SEEDS):
        image = build_image(f"ghcr-{seed.owner}-{seed.package}-{n}")
        repo = f"{seed.owner}/{seed.package}"
        items += [(repo, tag, image) for tag in seed.tags]
        package = owners[seed.owner].packages[seed.package]
        retagged = seed.package == "app" and seed.tags == ("0.8",)
        when = (created + timedelta(days=10 * n)).isoformat().replace("+00:00", "Z")
        package.versions.append(Version(1000 + n, image.digest, [] if retagged else list(seed.tags), when))
        pushed.update({f"{repo}:{tag}": image.digest for tag in seed.tags})
        if seed.sign:
            tag, manifest = signature_for(registry.address, repo, image.digest, key)
            items.append((repo, tag, manifest))
            package.versions.append(Version(2000 + n, manifest.digest, [tag], when))
    OciPusher.for_registry(registry, concurrency=4).push_many_sync(items)
    return GitHubState(owners=owners), pushed


def start_emulator(
    state: GitHubState, workdir: Path, *, detach: bool = False
) -> tuple[subprocess.Popen[bytes], str, Path]:
    """The emulator as a subprocess on a free port (HTTPS from the sandbox CA): (process, url, CA file)."""
    workdir.mkdir(parents=True, exist_ok=True)
    cert = server_certificate(workdir.parent / "certs", "github-api")
    state_file = workdir / "github-state.json"
    state_file.write_text(state.to_json(), encoding="utf-8")
    state_file.chmod(0o600)
    port = free_port(HOST)
    args = [sys.executable, "-m", "sandbox.github_emulator", str(state_file), str(port),
            str(cert.cert_file), str(cert.key_file)]
    proc = spawn_listening(args, host=HOST, port=port, log_file=workdir / "github-emulator.log", detach=detach,
                           timeout=READY_TIMEOUT, name="github emulator")  # fmt: skip
    return proc, f"https://{HOST}:{port}", cert.ca_file


def _keys(workdir: Path) -> KeyPair:
    if (workdir / ESTATE_KEY).is_file():
        return KeyPair(workdir / ESTATE_KEY, (workdir / ESTATE_KEY).with_suffix(".pub"))
    return generate_key_pair(workdir / "ghcr" / "keys", "cosign")


def start_ghcr_estate(workdir: Path, *, detach: bool = False) -> GhcrEstate:
    """Start the registry, seed it, start the emulator over what was seeded."""
    workdir = workdir.resolve()
    tokens = sandbox_tokens()
    values = {owner: _token_value(t) for owner, t in tokens.items()}
    spec = RegistrySpec(name="ghcr", tls=True, users={owner: values[owner] for owner in (SECURE, LEGACY)},
                        bcrypt_rounds=SANDBOX_BCRYPT_ROUNDS)
    registry = start_registry(spec, workdir, detach=detach)
    try:
        state, pushed = seed_registry(registry, _keys(workdir).private_key)
        state.tokens = {values[owner]: token for owner, token in tokens.items()}
        proc, url, ca_file = start_emulator(state, workdir / "ghcr", detach=detach)
    except BaseException:
        registry.stop()
        raise
    return GhcrEstate("ghcr", url, registry, ca_file, values, proc.pid, process_start_ticks(proc.pid),
                      pushed, _process=proc)
