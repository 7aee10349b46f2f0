"""The estate bench waits for its own audits only, within its timeout, and keeps
their stderr where a failure can show it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.estate_scale import run_audits


def fake_audit(report: Path, *, sleep: float = 0.0, stderr_bytes: int = 0, exit_code: int = 0) -> list[str]:
    """A process that writes `{}` as its report after `sleep`, a stderr burst, and exits."""
    code = (
        "import os, sys, time\n"
        f"time.sleep({sleep})\n"
        f"sys.stderr.write('x' * {stderr_bytes} + 'LAST-LINE\\n')\n"
        f"os.makedirs({str(report.parent)!r}, exist_ok=True)\n"
        f"open({str(report)!r}, 'w').write('{{}}')\n"
        f"sys.exit({exit_code})\n"
    )
    return [sys.executable, "-c", code]


@pytest.mark.timeout(60)
def test_a_server_child_ending_first_is_not_taken_for_an_audit(tmp_path: Path) -> None:
    server = subprocess.Popen([sys.executable, "-c", "pass"])  # a child like moto, which dies first
    try:
        report = tmp_path / "whole" / "report.json"
        (audited,), wall = run_audits([fake_audit(report, sleep=0.5)], {}, [report])
    finally:
        server.wait()
    assert audited.exit_code == 0 and audited.report == {}
    assert 0.5 <= audited.wall_s <= wall


@pytest.mark.timeout(60)
def test_a_hung_audit_is_killed_at_the_timeout(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    hung = [sys.executable, "-c", f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); "
            "time.sleep(600)"]  # fmt: skip
    with pytest.raises(TimeoutError):
        run_audits([hung], {}, [tmp_path / "hung" / "report.json"], timeout=1.0)
    assert not Path(f"/proc/{pid_file.read_text()}").exists(), "killed and reaped"


@pytest.mark.timeout(60)
def test_a_failing_audit_shows_the_tail_of_a_stderr_larger_than_a_pipe(tmp_path: Path) -> None:
    report = tmp_path / "shard-0" / "report.json"
    with pytest.raises(RuntimeError, match="LAST-LINE"):
        run_audits([fake_audit(report, stderr_bytes=1_000_000, exit_code=2)], {}, [report])
    assert (tmp_path / "shard-0.stderr.log").stat().st_size > 1_000_000
