"""Process helpers for servers that may outlive the Python process that started them.

`sandbox up` starts registries in their own sessions and exits; `sandbox down`
runs later, in another process, with nothing but recorded pids. A bare pid can be
reused by an unrelated process, so each record also carries the process's start
time (from /proc) and nothing is signalled unless both still match.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any, Self


def process_start_ticks(pid: int) -> int | None:
    """The start time of `pid` in clock ticks since boot, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; the fields after it do not.
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[19])


def _state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def _reap(pid: int) -> None:
    """Collect the exit status if `pid` is our own child, so it stops being a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def is_alive(pid: int, start_ticks: int | None = None) -> bool:
    """True when `pid` runs (not a zombie) and, if given, started at `start_ticks`."""
    _reap(pid)
    state = _state(pid)
    if state is None or state in ("Z", "X"):
        return False
    return start_ticks is None or process_start_ticks(pid) == start_ticks


def _signal(pid: int, sig: int, *, group: bool) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group and os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def terminate_pid(
    pid: int, start_ticks: int | None = None, *, group: bool = True, timeout: float = 5.0
) -> bool:
    """SIGTERM `pid` (and its process group if it leads one), SIGKILL after `timeout`.

    Returns True if it was running and is now gone, False if it was not ours to
    stop (already dead, or the pid now belongs to another process).
    """
    if not is_alive(pid, start_ticks):
        return False
    _signal(pid, signal.SIGTERM, group=group)
    if _wait_gone(pid, timeout):
        return True
    _signal(pid, signal.SIGKILL, group=group)
    return _wait_gone(pid, timeout)


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(pid):
            return True
        time.sleep(0.02)
    return not is_alive(pid)


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS reports free right now (another process may still take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def stop_each(services: Sequence[Any]) -> None:
    """Stop every service, last started first, each even if another fails;
    then raise the first failure."""
    errors: list[BaseException] = []
    for service in reversed(services):
        try:
            service.stop()
        except Exception as exc:  # noqa: BLE001 - keep stopping the others
            errors.append(exc)
    if errors:
        raise errors[0]


class StopsOnExit:
    """`with thing:` stops the thing on the way out, whatever happened inside."""

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class EmulatorBesideRegistry(StopsOnExit):
    """An emulator process of ours in front of a real registry (Harbor, GAR, GHCR,
    Docker Hub sandboxes): one lifecycle for the pair. Subclasses are dataclasses
    with `pid`, `start_ticks`, `_process` and `registry` (a RunningRegistry)."""

    pid: int
    start_ticks: int | None
    _process: subprocess.Popen[bytes] | None
    registry: Any

    @property
    def pids(self) -> list[int]:
        return [self.pid, *self.registry.pids]

    def alive(self) -> bool:
        return child_alive(self._process, self.pid, self.start_ticks) and bool(self.registry.alive())

    def stop(self) -> None:
        try:
            stop_child(self._process, self.pid, self.start_ticks)
        finally:
            self.registry.stop()


def child_alive(proc: subprocess.Popen[bytes] | None, pid: int, start_ticks: int | None) -> bool:
    """Alive via our own handle when we started it, via /proc when only the pid was recorded."""
    if proc is not None:
        return proc.poll() is None
    return is_alive(pid, start_ticks)


def stop_child(proc: subprocess.Popen[bytes] | None, pid: int, start_ticks: int | None) -> None:
    """Terminate, kill after 5 s, wait until gone. Idempotent."""
    if proc is None:
        terminate_pid(pid, start_ticks)
        return
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


# --------------------------------------------------------------------------
# Spawning: a server is owned from the instant it exists
# --------------------------------------------------------------------------
#
# SIGTERM and Ctrl-C raise in the main thread wherever it happens to be. Raised
# while a registry is still starting — between `Popen` and the moment its estate
# holds it — the exception unwinds past the only reference to the process, and
# the server outlives the demo. So every server is spawned through `spawn`,
# which records the handle in each enclosing `spawned_processes()` scope before a
# signal can get in; whoever opened the scope can then stop everything in it.


class SpawnedProcesses:
    """The processes spawned while this scope was open (in this thread/context)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: list[subprocess.Popen[bytes]] = []

    def add(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs.append(proc)

    def stop_all(self) -> None:
        """Stop each one still running, newest first (terminate, kill after 5 s).
        A second signal waits until they are stopped instead of cutting this short."""
        with self._lock:
            procs = list(reversed(self._procs))
        with _signals_held():
            for proc in procs:
                stop_child(proc, proc.pid, None)


_SCOPES: contextvars.ContextVar[tuple[SpawnedProcesses, ...]] = contextvars.ContextVar("spawn_scopes", default=())


@contextlib.contextmanager
def spawned_processes() -> Iterator[SpawnedProcesses]:
    """Collect every process `spawn` starts inside the block (nested scopes all see it)."""
    scope = SpawnedProcesses()
    token = _SCOPES.set((*_SCOPES.get(), scope))
    try:
        yield scope
    finally:
        _SCOPES.reset(token)


def spawn(args: Sequence[str], *, log: IO[bytes], detach: bool) -> subprocess.Popen[bytes]:
    """Start a server (stdout and stderr to `log`) and record it in the open scopes.
    detach=True puts it in its own session so it can outlive this process."""
    with _signals_held():
        proc = subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=detach,
            close_fds=True,
        )
        for scope in _SCOPES.get():
            scope.add(proc)
    return proc


def spawn_listening(
    args: Sequence[str], *, host: str, port: int, log_file: Path, detach: bool, timeout: float, name: str
) -> subprocess.Popen[bytes]:
    """`spawn` a server that is to listen on host:port (its output appended to
    `log_file`) and return once the port answers. If it exits first or does not
    answer within `timeout` (RuntimeError naming `name` and the log), or anything
    else interrupts the wait (Ctrl-C and SIGTERM included), the child is stopped
    before the exception goes on."""
    with log_file.open("ab") as log:
        proc = spawn(args, log=log, detach=detach)
    try:
        deadline = time.monotonic() + timeout
        while not port_open(host, port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start; see {log_file}")
            time.sleep(0.05)
    except BaseException:
        stop_child(proc, proc.pid, None)
        raise
    return proc


_HELD_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGTERM/SIGINT while the block runs, then deliver them to their usual
    handlers. Handlers only run in the main thread, so elsewhere
    nothing needs holding. (Blocking them with pthread_sigmask instead would be
    inherited by the child, which could then not be terminated.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)

    previous: dict[int, Any] = {sig: signal.signal(sig, hold) for sig in _HELD_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        for sig in dict.fromkeys(caught):
            signal.raise_signal(sig)
