"""How the history store scales: RUNS audit runs of FINDINGS findings each
(1,000 x 2,000 = two million finding rows: about three years of nightly audits
of a 200-repository estate) written to SQLite and to a real PostgreSQL server
(Debian's `postgresql`, started on a free loopback port in a temporary
directory, fsync on as in production), then read back the ways regguard reads
it: list the runs, one run's findings, the diff of the last two runs, the
trend over the last 30, RG-MON-002's pull baseline, and `history verify` over
the whole chain.

    .venv/bin/python bench/history_scale.py [--runs 1000] [--findings 2000] [--backend sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audits.diff import compare_runs  # noqa: E402
from audits.model import AuditResult, Controls, Finding, Severity, Status, TargetSummary  # noqa: E402
from audits.store import open_history, verify_chain  # noqa: E402
from audits.store.db import HistoryDB  # noqa: E402
from tests.history.postgres_server import fresh_database, running_postgres  # noqa: E402

TARGETS = ("edge", "core", "harbor", "laptop")
RULES = ("RG-TAG-002", "RG-RET-001", "RG-SCAN-001", "RG-SIGN-001", "RG-AUTH-001")
STATUSES = (Status.PASS, Status.PASS, Status.FAIL, Status.MANUAL, Status.NOT_APPLICABLE)


def audit(run: int, findings: int) -> AuditResult:
    """A run in which one finding in a hundred changes status from night to night."""
    started = datetime(2024, 1, 1, 2, tzinfo=UTC) + timedelta(days=run)
    rows = []
    for i in range(findings):
        status = STATUSES[(i + (run if i % 100 == 0 else 0)) % len(STATUSES)]
        rows.append(Finding(
            rule=RULES[i % len(RULES)], title="", status=status, severity=Severity.HIGH,
            target=TARGETS[i % len(TARGETS)], kind="distribution", resource=f"team-{i // 50}/service-{i}",
            message=f"observed {status.value} for service-{i}", controls=Controls((), ()),
            evidence={"source": f"GET https://registry/v2/team-{i // 50}/service-{i}/tags/list", "tags": i % 40},
        ))
    return AuditResult("regguard", "0.1.0", started, started + timedelta(minutes=3), "prod", ("soc2",),
                       tuple(TargetSummary(t, "distribution", True) for t in TARGETS), tuple(rows))


def timed(what: str, action: Callable[[], Any]) -> Any:
    began = time.perf_counter()
    value = action()
    print(f"  {what:<34} {time.perf_counter() - began:8.3f} s")
    return value


def bench(url: str, runs: int, findings: int) -> None:
    db = open_history(url)
    pulls = {"edge": {f"team-{i}/service": {"2024-01-01": i} for i in range(50)}}
    began = time.perf_counter()
    slowest = 0.0
    for run in range(runs):
        result = audit(run, findings)
        one = time.perf_counter()
        db.record(result, pulls)
        slowest = max(slowest, time.perf_counter() - one)
    total = time.perf_counter() - began
    print(f"  write {runs} runs x {findings} findings  {total:8.1f} s  ({1000 * total / runs:.0f} ms per run "
          f"incl. building it, slowest {1000 * slowest:.0f} ms)")
    read(db)
    db.close()


def read(db: HistoryDB) -> None:
    stored = timed("list runs (regguard history)", db.runs)
    last = timed("one run's findings", lambda: db.findings(stored[-1]))
    diff = timed("diff of the last two runs", lambda: compare_runs(
        stored[-2].run_id, db.findings(stored[-2]), stored[-1].run_id, last))
    timed("trend over the last 30 runs", lambda: db.trend(30))
    timed("pull baseline (RG-MON-002)", db.pull_baseline)
    check = timed("history verify (whole chain)", lambda: verify_chain(db))
    print(f"  -> {len(stored)} runs, {len(last)} findings in the last, diff: {len(diff.new_failures)} new / "
          f"{len(diff.fixed)} fixed / {len(diff.changed)} changed; chain intact: {check.intact}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--findings", type=int, default=2000)
    parser.add_argument("--backend", default="sqlite,postgresql")
    args = parser.parse_args()
    backends = [b.strip() for b in args.backend.split(",")]
    with tempfile.TemporaryDirectory(prefix="regguard-history-bench-") as tmp:
        if "sqlite" in backends:
            print("SQLite (file, WAL):")
            bench(str(Path(tmp) / "history.sqlite"), args.runs, args.findings)
            print(f"  database size {(Path(tmp) / 'history.sqlite').stat().st_size / 1e6:.0f} MB")
        if "postgresql" in backends:
            with running_postgres(fsync=True) as server:
                print("PostgreSQL (local server, fsync on):")
                bench(fresh_database(server, "bench"), args.runs, args.findings)


if __name__ == "__main__":
    main()
