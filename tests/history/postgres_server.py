"""A real PostgreSQL server (Debian's `postgresql` package) for the history
tests: a fresh cluster in a temporary directory, listening on a free
127.0.0.1 port, fsync off (throwaway data), stopped at the end.

PostgreSQL refuses to run as root, so as root the cluster belongs to the
`postgres` user the Debian package creates and is driven through `runuser`.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

SUPERUSER = "regguard"


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is missing: install the Debian package postgresql (make system-deps)")
    return found[-1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@contextmanager
def running_postgres(fsync: bool = False) -> Iterator[str]:
    """Yield the URL of a superuser connection to the `postgres` database
    (fsync off for tests: their data is thrown away; on for benchmarks)."""
    workdir = Path(tempfile.mkdtemp(prefix="regguard-pg-"))
    data = workdir / "data"
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres", "postgres")
    port = _free_port()
    subprocess.run(
        _as_owner([_bin("initdb"), "-D", str(data), "-U", SUPERUSER, "-A", "trust", "--no-sync", "-E", "UTF8"]),
        check=True, capture_output=True, timeout=120,
    )
    durability = "" if fsync else " -c fsync=off -c full_page_writes=off"
    options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1{durability}"
    start = [_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(workdir / "log"), "-w", "-t", "60", "start"]
    subprocess.run(_as_owner(start), check=True, capture_output=True, timeout=90)
    try:
        yield f"postgresql://{SUPERUSER}@127.0.0.1:{port}/postgres"
    finally:
        stop = [_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "-t", "30", "stop"]
        subprocess.run(_as_owner(stop), capture_output=True, timeout=60)
        shutil.rmtree(workdir, ignore_errors=True)


def fresh_database(server_url: str, name: str) -> str:
    """Create an empty database on the server; return its URL."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"
