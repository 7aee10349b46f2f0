"""A registry that drips its answers one byte a second never trips a per-read
timeout. Beside a healthy registry, it must not hang the audit: `regguard audit`
ends soon after the target's deadline, the audit-wide `--deadline`, or a
SIGTERM / Ctrl-C, writes the report with the healthy target judged and the slow
one's unfinished facts as errors — keeping what it did observe (TLS) — and exits 3."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.deadline_servers import TLS_RECORD, DripServer, TinyRegistry, drip_server, tiny_registry, tls_context

ROOT = Path(__file__).resolve().parents[2]
HEALTHY_REPOS = ("app/api", "app/web")
SLACK_S = 8.0  # process start (imports) plus judging and writing the report on a busy 2-core machine


def audit_command(tmp_path: Path, config: dict[str, Any], *extra: str) -> list[str]:
    path = tmp_path / "regguard.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    return [sys.executable, "-m", "audits.cli", "audit", "-c", str(path), "--format", "json", "--output", str(out),
            *extra]  # fmt: skip


def targets(slow: DripServer, ca_file: Path, healthy: TinyRegistry, **slow_keys: Any) -> dict[str, Any]:
    return {
        "environment": "prod",
        "history_dir": "history",
        "targets": [
            {"name": "slow", "kind": "distribution", "url": slow.url, "ca_file": str(ca_file), "timeout": 5}
            | slow_keys,
            {"name": "healthy", "kind": "distribution", "url": healthy.url, "timeout": 5},
        ],
    }


def report_of(tmp_path: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((tmp_path / "out" / "report.json").read_text())
    return report


def findings_of(report: dict[str, Any], target: str) -> dict[str, set[str]]:
    by_rule: dict[str, set[str]] = {}
    for f in report["findings"]:
        if f["target"] == target:
            by_rule.setdefault(f["rule"], set()).add(f["status"])
    return by_rule


def assert_healthy_judged_and_slow_cut_short(report: dict[str, Any], reason: str) -> None:
    summaries = {t["name"]: t for t in report["targets"]}
    assert summaries["healthy"]["complete"], summaries["healthy"]["errors"]
    healthy = findings_of(report, "healthy")
    assert "fail" in healthy["RG-TLS-001"], "the plain-HTTP registry was judged"
    assert healthy["RG-TAG-001"] <= {"pass", "fail"}, healthy["RG-TAG-001"]

    assert not summaries["slow"]["complete"]
    assert any(reason in e for e in summaries["slow"]["errors"]), summaries["slow"]["errors"]
    slow = findings_of(report, "slow")
    assert slow["RG-TLS-001"] == {"pass"}, "the TLS handshake it did observe is kept"
    assert slow["RG-TAG-001"] == {"error"}
    messages = [f["message"] for f in report["findings"] if f["target"] == "slow" and f["rule"] == "RG-TAG-001"]
    assert all(reason in m for m in messages), messages


def test_target_deadline_cuts_a_dripping_registry_short(tmp_path: Path) -> None:
    context, ca_file = tls_context(tmp_path / "certs")
    with drip_server(tls=context) as slow, tiny_registry(HEALTHY_REPOS) as healthy:
        command = audit_command(tmp_path, targets(slow, ca_file, healthy, deadline=3))
        started = time.monotonic()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
        elapsed = time.monotonic() - started
        assert slow.connected.is_set(), "the slow registry was reached"
    assert done.returncode == 3, done.stderr[-2000:]
    assert elapsed < 3 + SLACK_S, f"audit took {elapsed:.1f} s with a 3 s target deadline"
    print(f"target deadline 3 s: audit process took {elapsed:.2f} s")
    assert_healthy_judged_and_slow_cut_short(report_of(tmp_path), "target did not finish within 3 s")


def test_a_handshake_that_never_ends_holds_neither_the_report_nor_the_process(tmp_path: Path) -> None:
    """The TLS probe blocks a worker thread in a read Python cannot interrupt; the
    interpreter's exit would join that thread, so the program must end without it."""
    with drip_server(reply=TLS_RECORD, scheme="https") as slow, tiny_registry(HEALTHY_REPOS) as healthy:
        config = targets(slow, tmp_path / "no-ca.pem", healthy, deadline=2, timeout=60)
        del config["targets"][0]["ca_file"]  # CPython bounds a whole handshake by the socket timeout: 60 s
        started = time.monotonic()
        done = subprocess.run(audit_command(tmp_path, config), cwd=ROOT, capture_output=True, text=True, timeout=60)
        elapsed = time.monotonic() - started
    assert done.returncode == 3, done.stderr[-2000:]
    assert elapsed < 2 + SLACK_S, f"the process took {elapsed:.1f} s to end"
    report = report_of(tmp_path)
    slow_tls = [f for f in report["findings"] if f["target"] == "slow" and f["rule"] == "RG-TLS-001"]
    assert [f["status"] for f in slow_tls] == ["error"]
    assert "target did not finish within 2 s" in slow_tls[0]["message"]


def test_audit_deadline_option_bounds_the_whole_audit(tmp_path: Path) -> None:
    context, ca_file = tls_context(tmp_path / "certs")
    with drip_server(tls=context) as slow, tiny_registry(HEALTHY_REPOS) as healthy:
        command = audit_command(tmp_path, targets(slow, ca_file, healthy), "--deadline", "2")
        started = time.monotonic()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
        elapsed = time.monotonic() - started
    assert done.returncode == 3, done.stderr[-2000:]
    assert elapsed < 2 + SLACK_S, f"audit took {elapsed:.1f} s with --deadline 2"
    print(f"--deadline 2: audit process took {elapsed:.2f} s")
    assert_healthy_judged_and_slow_cut_short(report_of(tmp_path), "audit deadline of 2 s")


def wait_until(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_mid_audit_writes_the_reports_and_exits_3(tmp_path: Path, sig: signal.Signals) -> None:
    context, ca_file = tls_context(tmp_path / "certs")
    with drip_server(tls=context) as slow, tiny_registry(HEALTHY_REPOS) as healthy:
        command = audit_command(tmp_path, targets(slow, ca_file, healthy))
        proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert wait_until(lambda: slow.connected.is_set() and len(healthy.manifests_served) >= 2, 30)
            time.sleep(0.5)  # the healthy collector returns its facts
            proc.send_signal(sig)
            sent = time.monotonic()
            _, stderr = proc.communicate(timeout=30)
            took = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 3, stderr[-2000:]
    assert took < 5, f"{sig.name} to exit took {took:.1f} s"
    print(f"{sig.name} to exit: {took:.2f} s")
    assert f"audit interrupted by {sig.name}" in stderr
    assert_healthy_judged_and_slow_cut_short(report_of(tmp_path), f"audit interrupted by {sig.name}")
