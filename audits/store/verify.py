"""`regguard history verify`: walk the hash chain and name every run that was
changed, deleted or reordered after it was stored.

The chain proves the stored runs are the ones written, in the order written.
It cannot notice the newest runs being cut off the end — pin the head hash
elsewhere for that (an evidence bundle carries its run's hash, and
`verify-evidence --history` checks it against the store).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from audits.store.chain import GENESIS, run_content_hash
from audits.store.db import HistoryDB
from audits.store.schema import findings, runs


@dataclass(frozen=True)
class ChainCheck:
    runs: int
    head_sha256: str
    problems: tuple[str, ...]

    @property
    def intact(self) -> bool:
        return not self.problems


def verify_chain(db: HistoryDB) -> ChainCheck:
    problems: list[str] = []
    previous: Mapping[str, Any] | None = None
    count = 0
    for run, rows in _runs_with_findings(db):
        count += 1
        problems.extend(_link_problems(previous, run))
        if run_content_hash(run, rows) != run["content_sha256"]:
            problems.append(f"run {run['run_id']} (#{run['seq']}) was changed after it was stored")
        previous = run
    head = previous["content_sha256"] if previous else GENESIS
    return ChainCheck(count, head, tuple(problems))


def _link_problems(previous: Mapping[str, Any] | None, run: Mapping[str, Any]) -> list[str]:
    name = f"run {run['run_id']} (#{run['seq']})"
    if previous is None:
        if run["seq"] != 1 or run["previous_sha256"] != GENESIS:
            return [f"{name} is not the first run stored: the runs before it were deleted"]
        return []
    gap = run["seq"] - previous["seq"] - 1
    if gap > 0:
        return [f"{gap} run(s) between run {previous['run_id']} and {name} were deleted"]
    if run["previous_sha256"] != previous["content_sha256"]:
        return [f"{name} does not follow run {previous['run_id']}: runs were reordered or replaced"]
    return []


def _runs_with_findings(db: HistoryDB) -> Iterator[tuple[Mapping[str, Any], list[dict[str, Any]]]]:
    """Each run row (as stored) with its finding rows, in chain order, one
    run's findings in memory at a time."""
    with db.engine.connect() as conn:
        run_rows = [dict(r._mapping) for r in conn.execute(select(runs).order_by(runs.c.seq))]
        for run in run_rows:
            rows = conn.execute(select(findings).where(findings.c.run == run["id"]))
            yield run, [dict(r._mapping) for r in rows]
