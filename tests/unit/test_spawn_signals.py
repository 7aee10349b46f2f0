"""A SIGTERM that arrives while a server is being spawned must not lose the
process: `spawn` records it in the open `spawned_processes()` scopes before the
signal's handler runs, so whoever opened the scope can stop it. Nor while it is
waited for: `spawn_listening` stops the child on any exception, Ctrl-C included."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sandbox import process
from sandbox.process import spawn, spawned_processes


@pytest.fixture
def sigterm_raises() -> Iterator[None]:
    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(143)

    previous = signal.signal(signal.SIGTERM, handler)
    yield
    signal.signal(signal.SIGTERM, previous)


def test_a_signal_during_spawn_cannot_lose_the_child(
    sigterm_raises: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    real_popen = subprocess.Popen
    started: list[subprocess.Popen[bytes]] = []

    def popen_then_signal(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        proc = real_popen(*args, **kwargs)
        started.append(proc)
        signal.raise_signal(signal.SIGTERM)  # as if it came between the fork and Popen returning
        return proc

    monkeypatch.setattr(process.subprocess, "Popen", popen_then_signal)
    with spawned_processes() as spawned:
        with pytest.raises(SystemExit), (tmp_path / "log").open("ab") as log:
            spawn(["sleep", "30"], log=log, detach=False)
        spawned.stop_all()
    (child,) = started
    try:
        assert child.poll() is not None, "the scope knew the child and stopped it"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_nested_scopes_all_see_a_spawned_process(tmp_path: Any) -> None:
    with spawned_processes() as outer, spawned_processes() as inner, (tmp_path / "log").open("ab") as log:
        child = spawn(["sleep", "30"], log=log, detach=False)
        inner.stop_all()
        assert child.poll() is not None
        outer.stop_all()  # already stopped: harmless


@pytest.fixture
def started_children(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Every process `spawn` starts in the test; any still running afterwards is killed."""
    real_popen = subprocess.Popen
    started: list[subprocess.Popen[bytes]] = []

    def popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        started.append(real_popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(process.subprocess, "Popen", popen)
    yield started
    for child in started:
        if child.poll() is None:
            child.kill()
            child.wait()


def _start_dockerhub_emulator(directory: Path) -> object:
    from sandbox.dockerhub_estate import estate_state, start_emulator

    return start_emulator(estate_state("dckr_pat_test", datetime.now(UTC)), directory)


def _start_github_emulator(directory: Path) -> object:
    from sandbox.ghcr_estate import GitHubState, start_emulator

    return start_emulator(GitHubState(), directory / "ghcr")


@pytest.mark.parametrize("start", [_start_dockerhub_emulator, _start_github_emulator])
def test_ctrl_c_while_an_emulator_starts_stops_it(
    start: Callable[[Path], object], started_children: list[subprocess.Popen[bytes]],
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:  # fmt: skip
    def ctrl_c(*args: Any, **kwargs: Any) -> bool:
        raise KeyboardInterrupt

    monkeypatch.setattr(process, "port_open", ctrl_c)  # the wait for its port is interrupted
    with pytest.raises(KeyboardInterrupt):
        start(tmp_path)
    (child,) = started_children
    assert child.poll() is not None, "stopped before the interrupt went on"


def test_a_server_that_exits_before_listening_is_reported_with_its_log(
    started_children: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    with pytest.raises(RuntimeError, match=r"the thing did not start; see .*thing\.log"):
        process.spawn_listening([sys.executable, "-c", "raise SystemExit(3)"], host="127.0.0.1",
                                port=process.free_port(), log_file=tmp_path / "thing.log", detach=False,
                                timeout=30, name="the thing")  # fmt: skip
    (child,) = started_children
    assert child.poll() == 3


def test_a_server_that_never_listens_is_stopped_at_the_timeout(
    started_children: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    with pytest.raises(RuntimeError, match="did not start"):
        process.spawn_listening(["sleep", "30"], host="127.0.0.1", port=process.free_port(),
                                log_file=tmp_path / "sleep.log", detach=False, timeout=0.3, name="sleep")  # fmt: skip
    (child,) = started_children
    assert child.poll() is not None
