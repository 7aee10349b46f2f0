"""Parallel processes writing to one history (two scheduled audits at once)
never corrupt or interleave a run: each run keeps exactly its own findings,
places in the chain are consecutive and the chain verifies."""

from __future__ import annotations

import multiprocessing

from audits.store import open_history, verify_chain
from tests.history.results import finding, result

WRITERS, RUNS_EACH, FINDINGS_EACH = 4, 5, 300


def _writer(url: str, writer: int) -> None:
    db = open_history(url)  # every process also races to create the schema
    for run in range(RUNS_EACH):
        findings = [finding("RG-TAG-002", "edge", f"repo/{i}", "fail", message=f"writer {writer} run {run}")
                    for i in range(FINDINGS_EACH)]
        db.record(result(findings, day=run), {})
    db.close()


def test_parallel_writers_never_interleave_a_run(history_url: str) -> None:
    # spawn, not fork: a fork of the test process could inherit a lock held by another test's thread
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(history_url, w)) for w in range(WRITERS)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert [w.exitcode for w in workers] == [0] * WRITERS
    db = open_history(history_url)
    runs = db.runs()
    assert [r.seq for r in runs] == list(range(1, WRITERS * RUNS_EACH + 1))
    for run in runs:
        messages = {f.message for f in db.findings(run)}
        assert len(messages) == 1 and len(db.findings(run)) == FINDINGS_EACH
    written = {m for r in runs for m in {f.message for f in db.findings(r)}}
    assert len(written) == WRITERS * RUNS_EACH
    assert verify_chain(db).intact
    db.close()
