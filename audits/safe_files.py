"""Writing files into a folder someone else may have prepared.

An output folder can hold a planted `report.html -> ~/.bashrc` link or a
dangling one pointing where a file should not appear, or be itself a link to
somewhere else. So every file is written under a fresh temporary name
(`O_CREAT|O_EXCL|O_NOFOLLOW`) relative to a descriptor of the folder (opened
with `O_NOFOLLOW`, so the folder cannot be swapped mid-write) and renamed over
the final name: a rename replaces a link, it never writes through one.

The folder itself must be one we can own. The rule, checked before an audit
and again at every write:

* a real directory, not a symbolic link (only the last path component: links
  higher up are the machine's own layout);
* owned by the current user or by root (root's folders are the system's; a
  folder another user owns is theirs to rewrite after we wrote);
* not writable by every user unless it has the sticky bit (as /tmp does):
  otherwise anyone could replace the reports. Group-writable folders are
  allowed: shared team folders are the point of a group.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafeLocation(Exception):
    """One line: the path and why nothing can (or may) be written there."""


def output_dir_refusal(st: os.stat_result) -> str | None:
    """Why a directory with this `lstat` may not hold our files, or None."""
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link; give the directory it points to"
    if not stat.S_ISDIR(st.st_mode):
        return "exists and is not a directory"
    if st.st_uid not in (os.geteuid(), 0):
        return f"is owned by another user (uid {st.st_uid})"
    if st.st_mode & stat.S_IWOTH and not st.st_mode & stat.S_ISVTX:
        return "is writable by every user and not sticky (chmod o-w or +t)"
    return None


def prepare_output_dir(path: Path) -> None:
    """Create `path` (and parents) if needed and prove a file can be written
    there safely, so a bad `--output` fails before anything is audited."""
    _create_dir(path)
    with _Directory(path) as directory:
        directory.probe()


def write_replacing(directory: Path, name: str, data: bytes) -> Path:
    """Write `data` as `directory/name` (created if needed), replacing whatever
    entry had that name, never following it; return the path."""
    _create_dir(directory)
    with _Directory(directory) as folder:
        folder.write(name, data)
    return directory / name


def _create_dir(path: Path) -> None:
    try:
        if path.is_symlink():
            raise UnsafeLocation(f"{path}: {output_dir_refusal(path.lstat())}")
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UnsafeLocation(f"{path}: exists and is not a directory") from None
    except NotADirectoryError:
        raise UnsafeLocation(f"{path}: a parent of it is not a directory") from None
    except OSError as exc:
        raise UnsafeLocation(f"{path}: cannot create the directory ({exc.strerror})") from None


class _Directory:
    """A directory held open by descriptor, checked against the rule."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> _Directory:
        try:
            self.fd = os.open(self.path, _DIR_FLAGS)
        except OSError as exc:
            reason = output_dir_refusal(self.path.lstat()) if self.path.is_symlink() else None
            raise UnsafeLocation(f"{self.path}: {reason or f'cannot open ({exc.strerror})'}") from None
        reason = output_dir_refusal(os.fstat(self.fd))
        if reason is not None:
            self.__exit__()
            raise UnsafeLocation(f"{self.path}: {reason}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def probe(self) -> None:
        """Create and remove a temporary file: the check that /proc, /sys or a
        read-only mount fail here rather than after the audit."""
        name = self._temporary_name("probe")
        self._create(name, b"")
        os.unlink(name, dir_fd=self.fd)

    def write(self, name: str, data: bytes) -> None:
        temporary = self._temporary_name(name)
        self._create(temporary, data)
        try:
            os.replace(temporary, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except OSError as exc:
            os.unlink(temporary, dir_fd=self.fd)
            raise UnsafeLocation(f"{self.path / name}: cannot write ({exc.strerror})") from None

    def _create(self, name: str, data: bytes) -> None:
        try:
            fd = os.open(name, _NEW_FILE_FLAGS, 0o666, dir_fd=self.fd)
        except OSError as exc:
            raise UnsafeLocation(f"{self.path}: cannot write files there ({exc.strerror})") from None
        try:
            with os.fdopen(fd, "wb") as stream:
                stream.write(data)
        except OSError as exc:
            os.unlink(name, dir_fd=self.fd)
            raise UnsafeLocation(f"{self.path}: cannot write ({exc.strerror})") from None

    @staticmethod
    def _temporary_name(name: str) -> str:
        return f".{name}.{secrets.token_hex(8)}.tmp"
