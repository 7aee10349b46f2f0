"""A SIGTERM that arrives while a server is being spawned must not lose the
process: `spawn` records it in the open `spawned_processes()` scopes before the
signal's handler runs, so whoever opened the scope can stop it."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
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
