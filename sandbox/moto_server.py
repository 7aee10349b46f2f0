"""A real moto server on a loopback port: the local stand-in for AWS (ECR, IAM,
CloudTrail, KMS, S3) that the ECR collector, its tests, the bench and the demo
estate talk to over HTTP, exactly as they would to AWS.

It runs as a subprocess (`python -m moto.server`), not a thread: the collector's
thread pool then competes with a separate process, as it would with AWS, and
`sandbox up` can leave it running after the starting process exits (`detach`).
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.process import StopsOnExit, child_alive, free_port, process_start_ticks, spawn, stop_child

HOST = "127.0.0.1"
READY_TIMEOUT = 30.0
_PORT_ATTEMPTS = 5

# moto accepts any credentials; these fixed dummies are what its docs use.
MOTO_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
}


class MotoStartError(RuntimeError):
    """moto did not come up; the message carries the end of its log."""


@dataclass
class MotoServer(StopsOnExit):
    """A running moto server. Usable as a context manager; `stop` is idempotent."""

    host: str
    port: int
    pid: int
    log_file: Path
    start_ticks: int | None = None
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pids(self) -> list[int]:
        return [self.pid]

    def alive(self) -> bool:
        return child_alive(self._process, self.pid, self.start_ticks)

    def stop(self) -> None:
        """SIGTERM, SIGKILL after 5 s, wait until gone."""
        stop_child(self._process, self.pid, self.start_ticks)


def start_moto_server(workdir: Path, *, detach: bool = False, strict_sts: bool = False) -> MotoServer:
    """Start moto on a free loopback port and return once its API answers.

    `detach=True` puts it in its own session so it outlives the caller (stop it
    later by pid). `strict_sts=True` runs `sandbox.moto_strict` instead of plain
    moto, so AssumeRole is refused unless the role exists and trusts the caller.
    Raises MotoStartError with the log tail if it never answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    log_file = workdir / "moto.log"
    for _attempt in range(_PORT_ATTEMPTS):
        port = free_port(HOST)
        proc = _launch(port, log_file, detach, strict_sts)
        if _wait_ready(proc, port, log_file):
            return MotoServer(
                host=HOST,
                port=port,
                pid=proc.pid,
                log_file=log_file,
                start_ticks=process_start_ticks(proc.pid),
                _process=proc,
            )
    raise MotoStartError(f"moto: no free port after {_PORT_ATTEMPTS} tries:\n{_log_tail(log_file)}")


def _launch(port: int, log_file: Path, detach: bool, strict_sts: bool) -> subprocess.Popen[bytes]:
    module = "sandbox.moto_strict" if strict_sts else "moto.server"
    with log_file.open("ab") as log:
        return spawn([sys.executable, "-m", module, "-H", HOST, "-p", str(port)], log=log, detach=detach)


def _wait_ready(proc: subprocess.Popen[bytes], port: int, log_file: Path) -> bool:
    """True once `/moto-api/` answers; False if the port was taken (caller retries)."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            tail = _log_tail(log_file)
            if "Address already in use" in tail or "address already in use" in tail:
                return False
            raise MotoStartError(f"moto exited with code {code}:\n{tail}")
        if _answers(f"http://{HOST}:{port}/moto-api/"):
            return True
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    raise MotoStartError(f"moto did not answer on {HOST}:{port} within {READY_TIMEOUT:.0f}s")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as resp:  # noqa: S310 - loopback only
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _log_tail(log_file: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log_file.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class OnMotoServer(StopsOnExit):
    """A sandbox service that is one moto server (with what was seeded into it):
    its processes, liveness and stop are the server's. Subclasses are dataclasses
    with a `server` field."""

    server: MotoServer

    @property
    def pids(self) -> list[int]:
        return self.server.pids

    def alive(self) -> bool:
        return self.server.alive()

    def stop(self) -> None:
        self.server.stop()
