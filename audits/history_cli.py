"""The history commands (`history`, `history verify`, `diff`, `report --run`)
and what `audit` does with the store: import the old JSON history once, read
RG-MON-002's baseline, store the run, compare it with the previous one.

Kept apart from `audits.cli` so the audit flow there stays readable; like it,
everything heavy is imported inside the functions.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from audits.config import AuditConfig
    from audits.engine import AuditRun
    from audits.model import AuditResult, Finding
    from audits.rules.registry import Rule
    from audits.store import HistoryDB, StoredFinding, StoredRun
    from audits.store.db import Shard

TREND_RUNS = 30  # runs the trend charts show: a month of nightly audits


def add_history_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--history",
        metavar="URL",
        default=None,
        help="history database: SQLite path or postgresql://... (default: REGGUARD_HISTORY_URL, "
        "`history:` in the config, else ~/.local/share/regguard/history.sqlite)",
    )
    parser.add_argument("-c", "--config", type=Path, default=None, help="regguard.yaml (for its `history:`)")


def open_for_args(args: argparse.Namespace) -> HistoryDB:
    from audits.config import load_config

    config = load_config(args.config) if getattr(args, "config", None) else None
    return open_for_config(args.history, config, args.config.resolve().parent if config else Path.cwd())


def open_for_config(cli_url: str | None, config: AuditConfig | None, config_dir: Path) -> HistoryDB:
    from audits.store import history_url, open_history

    configured = config.history if config else None
    if configured and "://" not in configured:
        configured = str((config_dir / Path(configured).expanduser()).resolve())
    return open_history(history_url(cli_url, configured))


# --------------------------------------------------------------------------
# the audit's side
# --------------------------------------------------------------------------


def prepare_history(db: HistoryDB, config: AuditConfig, config_dir: Path) -> dict[str, Any]:
    """Import the JSON-file history once; return RG-MON-002's pull baseline."""
    from audits.store import import_json_history

    legacy = config.history_dir or (config_dir / ".regguard" / "history")
    if config.history_dir and legacy.exists() and not legacy.is_dir():
        print(f"regguard: warning: history_dir {legacy} is not a directory; no JSON history imported", file=sys.stderr)
    count = import_json_history(db, legacy)
    if count:
        print(f"regguard: imported {count} run(s) of JSON history from {legacy}", file=sys.stderr)
    return db.pull_baseline()


def store_run(db: HistoryDB, run: AuditRun, shard: Shard | None = None) -> AuditRun:
    """Append the run (or shard); return it with its run id, the comparison
    with the previous audit and the trend. A store that fails now is a
    warning: the reports of the audit are still written."""
    from sqlalchemy.exc import SQLAlchemyError

    from audits.history import pull_counts

    if shard is not None:
        shard = dataclasses.replace(shard, plan_sha256=run.plan_sha256)
    try:
        if shard is not None and _already_stored(db, shard):
            print(f"regguard: shard {shard.index}/{shard.count} of run {shard.group_id} is already stored "
                  "(a retried job?); this audit of it is reported but not stored again", file=sys.stderr)
            return run
        stored = db.record(run.result, pull_counts(run.facts), shard=shard)
    except SQLAlchemyError as exc:
        print(f"regguard: warning: the run was not stored in the history ({type(exc).__name__})", file=sys.stderr)
        return run
    try:
        result = with_history(db, run.result, stored)
    except Exception as exc:  # noqa: BLE001 - the run is stored; its reports must still be written
        print(f"regguard: warning: run {stored.run_id} is stored, but comparing it with the history failed "
              f"({type(exc).__name__}: {exc}); the reports carry no comparison", file=sys.stderr)
        return dataclasses.replace(run, result=dataclasses.replace(run.result, run_id=stored.run_id))
    return dataclasses.replace(run, result=result)


def _already_stored(db: HistoryDB, shard: Shard) -> bool:
    return any(p.run_id == shard.run_id for p in db.shards(shard.group_id))


def missing_shards(parts: Sequence[StoredRun]) -> tuple[int, list[str]]:
    """How many shards the run has and which of them are not stored ("1/4");
    labels count from 0, as `--shard` does."""
    expected = max(int((p.shard or "0/1").split("/")[1]) for p in parts)
    present = {p.shard for p in parts}
    return expected, [f"{i}/{expected}" for i in range(expected) if f"{i}/{expected}" not in present]


def plans_differ(parts: Sequence[StoredRun]) -> bool:
    """The shards partitioned different scope lists (the estate or the config
    changed between them), so their parts need not add up to one audit."""
    return len({p.plan_sha256 for p in parts}) > 1


def render_if_complete(db: HistoryDB, shard: Shard, formats: Sequence[str], output: Path) -> None:
    """After a shard is stored: when every part of its run is in, render the
    merged run into `output` (whichever shard finishes last does it; two that
    finish together both write the same reports). Otherwise say what is missing."""
    from audits.rules.registry import catalog
    from reports import write_reports

    parts = db.shards(shard.group_id)
    expected, missing = missing_shards(parts)
    if missing:
        print(f"regguard: run {shard.group_id}: {expected - len(missing)} of {expected} shards stored; waiting for "
              f"{', '.join(missing)} (the last shard renders the merged run; or `regguard report --run "
              f"{shard.group_id}`)", file=sys.stderr)
        return
    if plans_differ(parts):
        print(f"regguard: run {shard.group_id}: the shards listed different scopes (the estate or the config "
              "changed between them); the merged run is marked incomplete", file=sys.stderr)
    result = _joined_shards(db, shard.group_id, parts)
    for path in write_reports(result, catalog(), formats, output):
        print(f"wrote {path} (merged run {shard.group_id})")


def with_history(db: HistoryDB, result: AuditResult, stored: StoredRun) -> AuditResult:
    """The result annotated with its run id, "since the last run" and the trend."""
    from audits.diff import compare_runs

    earlier = [r for r in db.runs(last=TREND_RUNS + 1) if r.seq <= stored.seq]
    shown = {r.run_id for r in earlier[-TREND_RUNS:]}
    trend = tuple(p for p in db.trend(TREND_RUNS + 1) if p.run_id in shown)
    # A shard is part of a run: comparing it alone with a whole earlier run would
    # call the other shards' findings fixed. The merged run is compared instead.
    previous = None if stored.source == "shard" else previous_whole_run(db, stored.seq)
    since_last = None
    if previous is not None:
        since_last = compare_runs(previous[0], previous[2], stored.run_id, db.findings(stored))
    return dataclasses.replace(
        result, run_id=stored.run_id, run_sha256=stored.content_sha256, since_last=since_last, trend=trend
    )


WholeRun = tuple[str, int, list["StoredFinding"]]
"""(run id, chain position, findings) of an audit or of a sharded run's parts together."""


def previous_whole_run(db: HistoryDB, before_seq: int, skip_group: str | None = None) -> WholeRun | None:
    """The newest whole run stored before `before_seq`: an
    audit, or every part of a sharded run when all its parts are in and agree
    (a nightly sharded CronJob is compared with the night before). JSON imports
    and incomplete sharded runs are passed over."""
    looked_at: set[str] = {skip_group} if skip_group else set()
    for run in reversed(db.runs()):
        if run.seq >= before_seq:
            continue
        if run.source == "audit":
            return run.run_id, run.seq, db.findings(run)
        if run.source != "shard" or not run.group_id or run.group_id in looked_at:
            continue
        looked_at.add(run.group_id)
        parts = db.shards(run.group_id)
        if not missing_shards(parts)[1] and not plans_differ(parts):
            return run.group_id, parts[0].seq, [f for part in parts for f in db.findings(part)]
    return None


def run_findings(db: HistoryDB, run_id: str) -> WholeRun:
    """A stored run, or a sharded run's parts together, by id."""
    parts = db.shards(run_id)
    if parts:
        return run_id, min(p.seq for p in parts), [f for part in parts for f in db.findings(part)]
    run = db.run(run_id)
    return run.run_id, run.seq, db.findings(run)


# --------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------


def cmd_history(args: argparse.Namespace) -> int:
    from audits.untrusted import terminal_text

    db = open_for_args(args)
    try:
        if args.action == "verify":
            return _verify(db)
        since = _parse_since(args.since) if args.since else None
        for r in db.runs(target=args.target, since=since):
            counts = " ".join(f"{k}={v}" for k, v in r.summary.items() if v)
            targets = ",".join(str(t.get("name")) for t in r.targets)
            print(terminal_text(f"{r.run_id}  {r.started_at}  {r.environment}  {r.source}  [{targets}]  {counts}"))
        return 0
    finally:
        db.close()


def _verify(db: HistoryDB) -> int:
    from audits.store import verify_chain
    from audits.untrusted import terminal_text

    check = verify_chain(db)
    for problem in check.problems:
        print(f"regguard: history: {terminal_text(problem)}", file=sys.stderr)
    state = "intact" if check.intact else f"BROKEN ({len(check.problems)} problem(s))"
    print(f"{check.runs} run(s); chain {state}; head sha256 {check.head_sha256}")
    return 0 if check.intact else 1


def _parse_since(text: str) -> str:
    from audits.cli import UsageError

    try:
        return datetime.fromisoformat(text).isoformat()
    except ValueError:
        raise UsageError(f"--since: expected a date such as 2026-11-30, not {text!r}") from None


def cmd_diff(args: argparse.Namespace) -> int:
    from audits.cli import UsageError
    from audits.diff import compare_runs, diff_text

    db = open_for_args(args)
    try:
        chosen = [run_findings(db, a) for a in (args.run_a, args.run_b) if a]
        newest = _newest_whole_run(db, excluding=chosen[0][0] if chosen else None)
        if len(chosen) == 1 and newest:  # one run given: compared with the newest
            chosen.append(newest)
        elif not chosen and newest:  # none given: the newest with the one before it
            older = _newest_whole_run(db, before=newest[1], excluding=newest[0])
            chosen = [older, newest] if older else []
        if len(chosen) < 2:
            raise UsageError("diff: the history holds fewer than two audit runs to compare")
        (base_id, _, base), (head_id, _, head) = chosen
        diff = compare_runs(base_id, base, head_id, head)
    finally:
        db.close()
    print(json.dumps(diff.as_dict(), indent=2, ensure_ascii=False) if args.fmt == "json" else diff_text(diff))
    return 0


def _newest_whole_run(db: HistoryDB, before: int | None = None, excluding: str | None = None) -> WholeRun | None:
    """The newest whole run (before chain position `before`), other than `excluding`."""
    if before is None:
        newest = db.runs(last=1)
        before = newest[0].seq + 1 if newest else 0
    found = previous_whole_run(db, before, skip_group=excluding)
    if found is not None and found[0] == excluding:
        found = previous_whole_run(db, found[1], skip_group=excluding)
    return found


def cmd_report(args: argparse.Namespace) -> int:
    """Render a stored run with the current catalog's titles and controls
    (evidence is stored as digests only, so the reports carry those)."""
    from audits.cli import _check_output, _parse_formats
    from audits.rules.registry import catalog
    from reports import write_reports

    formats = _parse_formats(args.formats)
    _check_output(args.output)
    db = open_for_args(args)
    missing: list[str] = []
    differ = False
    try:
        parts = db.shards(args.run)
        if parts:
            _, missing = missing_shards(parts)
            differ = plans_differ(parts)
            result = _joined_shards(db, args.run, parts)
        else:
            result = _stored_run_result(db, db.run(args.run))
    finally:
        db.close()
    for path in write_reports(result, catalog(), formats, args.output):
        print(f"wrote {path}")
    if missing:
        print(f"regguard: run {args.run} is incomplete: shard(s) {', '.join(missing)} not stored", file=sys.stderr)
    if differ:
        print(f"regguard: run {args.run} is incomplete: its shards listed different scopes", file=sys.stderr)
    return 3 if missing or differ else 0


def _stored_run_result(db: HistoryDB, stored: StoredRun) -> AuditResult:
    return with_history(db, stored_result(stored, db.findings(stored)), stored)


def _joined_shards(db: HistoryDB, group_id: str, parts: Sequence[StoredRun]) -> AuditResult:
    """The shards of one run as one result: every shard's targets and
    findings, the earliest start and latest finish, compared with the
    previous whole audit. A missing shard makes the run incomplete."""
    from audits.diff import compare_runs
    from audits.model import TargetSummary, finding_sort_key

    results = [stored_result(p, db.findings(p)) for p in parts]
    _, missing = missing_shards(parts)
    targets = tuple(t for r in results for t in r.targets)
    if missing:
        gap = TargetSummary(f"(shards {', '.join(missing)})", "shard", False, (f"shard(s) {', '.join(missing)} "
                            f"of run {group_id} not stored",))
        targets = (*targets, gap)
    if plans_differ(parts):
        differ = TargetSummary("(shard plans)", "shard", False, (
            f"the shards of run {group_id} listed different scopes (the estate or the config changed between "
            "them): scopes may be missing or audited twice; run the shards again under a new run id",))
        targets = (*targets, differ)
    joined = dataclasses.replace(
        results[0], run_id=group_id, started_at=min(r.started_at for r in results),
        finished_at=max(r.finished_at for r in results), targets=targets,
        findings=tuple(sorted((f for r in results for f in r.findings), key=finding_sort_key)),
    )
    previous = previous_whole_run(db, min(p.seq for p in parts), skip_group=group_id)
    if previous is None:
        return joined
    since = compare_runs(previous[0], previous[2], group_id, joined.findings)
    return dataclasses.replace(joined, since_last=since)


def stored_result(stored: StoredRun, rows: Sequence[StoredFinding]) -> AuditResult:
    """A stored run as an AuditResult the reporters can render."""
    from audits.model import AuditResult, TargetSummary, finding_sort_key
    from audits.rules.registry import catalog
    from audits.vocabulary import DEFAULT_FRAMEWORKS

    kinds = {str(t.get("name")): str(t.get("kind")) for t in stored.targets}
    rules = catalog()
    findings = sorted((_stored_finding(row, kinds.get(row.target, ""), rules) for row in rows), key=finding_sort_key)
    targets = tuple(
        TargetSummary(str(t.get("name")), str(t.get("kind")), bool(t.get("complete"))) for t in stored.targets
    )
    return AuditResult(
        tool="regguard",
        version=stored.tool_version,
        run_id=stored.run_id,
        started_at=datetime.fromisoformat(stored.started_at),
        finished_at=datetime.fromisoformat(stored.finished_at),
        environment=stored.environment,
        frameworks=DEFAULT_FRAMEWORKS,
        targets=targets,
        findings=tuple(findings),
    )


def _stored_finding(row: StoredFinding, kind: str, rules: Mapping[str, Rule]) -> Finding:
    """Titles, controls and remediation come from the current catalog, as the
    engine attaches them; the evidence is its stored digest."""
    from audits.engine import catalog_fields
    from audits.model import Finding, Severity, Status, WaiverNote

    rule = rules.get(row.rule)
    status = Status(row.status)
    fields = catalog_fields(rule.meta if rule else None, kind, status)
    return Finding(
        rule=row.rule,
        status=status,
        severity=Severity(row.severity),
        target=row.target,
        kind=kind,
        resource=row.resource,
        message=row.message,
        evidence={"evidence_sha256": row.evidence_sha256},
        waiver=WaiverNote(**row.waiver) if row.waiver else None,
        **{**fields, "title": fields["title"] or row.rule},
    )
