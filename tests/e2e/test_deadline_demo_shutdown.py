"""A signal that reaches `regguard demo` while one of its registries is still
starting (spawned, waiting to listen, not yet handed to the estate) must not
leave that registry running: the moment it was lost in before."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.test_demo import ROOT, processes_mentioning

pytestmark = pytest.mark.integration

LAST_REGISTRY = "basic-http"  # the third registry the estate starts


def wait_for_process(text: str, timeout: float) -> bool:
    """Poll /proc every few ms so the signal lands inside the registry's readiness wait."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any("docker-registry" in p for p in processes_mentioning(text)):
            return True
        time.sleep(0.005)
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_while_a_registry_starts_leaves_nothing_running(tmp_path: Path, sig: signal.Signals) -> None:
    work = tmp_path / "work"
    demo = [sys.executable, "-m", "audits.cli", "demo", "--output", str(tmp_path / "out"), "--workdir", str(work)]
    proc = subprocess.Popen(demo, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for_process(str(work / LAST_REGISTRY), 60), "the third registry started"
        proc.send_signal(sig)
        sent = time.monotonic()
        proc.wait(timeout=30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == (130 if sig == signal.SIGINT else 143), proc.stderr.read() if proc.stderr else ""
    assert took < 10, f"stopping took {took:.1f} s"
    time.sleep(0.3)
    assert processes_mentioning(str(work)) == []
