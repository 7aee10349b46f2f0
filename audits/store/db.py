"""The history database: SQLite by default, PostgreSQL on request.

Why a database: scheduled audits, platform-team reviews and auditors need every
run with its findings (diffs, trends, `report --run`), appended by processes
that may run at the same time. Every write is one transaction that first takes
the store's write lock (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: a transaction
advisory lock), reads the chain head and appends — so two audits finishing at
once get consecutive places in the chain and never interleave their findings.
The schema is created and upgraded by Alembic on first use, under the same
lock; a schema newer than this regguard knows is refused, never downgraded.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from audits.history import HistoryError
from audits.model import AuditResult, Finding, TrendPoint, names_scope_of, utcnow
from audits.store.chain import GENESIS, evidence_digest, run_content_hash
from audits.store.schema import findings, imports, runs

MIGRATIONS = Path(__file__).parent / "migrations"
PG_LOCK_KEY = 0x7265_6767  # "regg": the advisory lock every writer takes
SQLITE_BUSY_TIMEOUT_S = 60  # a writer waits this long for another one to commit
MAX_BASELINE_RUNS = 400  # about a year of daily audits feeds RG-MON-002's baseline
FINDINGS_BATCH = 5_000  # rows per INSERT round trip


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` of the run `group_id` (`--shard I/N --run-id ID`)."""

    group_id: str
    index: int
    count: int
    plan_sha256: str | None = None  # of every scope the part was cut from (`audits.scopes.plan_digest`)

    @property
    def run_id(self) -> str:
        return f"{self.group_id}.{self.index}of{self.count}"


@dataclass(frozen=True)
class StoredRun:
    seq: int
    run_id: str
    source: str
    tool_version: str
    started_at: str
    finished_at: str
    environment: str
    targets: tuple[dict[str, Any], ...]
    summary: dict[str, int]
    previous_sha256: str
    content_sha256: str
    group_id: str | None = None
    shard: str | None = None
    plan_sha256: str | None = None


@dataclass(frozen=True)
class StoredFinding:
    rule: str
    target: str
    resource: str
    status: str
    severity: str
    message: str
    evidence_sha256: str
    waiver: dict[str, str] | None


def engine_url(url: str) -> str:
    """`postgresql://` uses psycopg 3 (the driver installed); a bare path is
    a SQLite file."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    return url


def display_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(engine_url(url)).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparseable history URL)"


class HistoryDB:
    """One history database; `open_history` creates it ready to use."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine = _create_engine(engine_url(url))
        except (ArgumentError, ImportError) as exc:
            raise HistoryError(f"history {display_url(url)}: not a usable database URL ({exc})") from None
        self.dialect = self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One transaction holding the store's write lock."""
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
            yield conn

    def migrate(self) -> None:
        """Create or upgrade the schema; refuse one newer than this code."""
        script = ScriptDirectory(str(MIGRATIONS))
        with self.write() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
            known = {rev.revision for rev in script.walk_revisions()}
            if current is not None and current not in known:
                raise HistoryError(
                    f"history {display_url(self.url)}: schema revision {current} is newer than this regguard "
                    f"knows ({script.get_current_head()}); upgrade regguard"
                )
            if current != script.get_current_head():
                config = Config()
                config.set_main_option("script_location", str(MIGRATIONS))
                config.attributes["connection"] = conn
                command.upgrade(config, "head")

    # ------------------------------------------------------------------ writing

    def record(
        self,
        result: AuditResult,
        pull_counts: Mapping[str, Any],
        *,
        source: str = "audit",
        run_id: str | None = None,
        shard: Shard | None = None,
    ) -> StoredRun:
        """Append one run (or one shard of a run) with its findings at the
        head of the chain, in one transaction."""
        with self.write() as conn:
            return self.append(conn, result, pull_counts, source=source, run_id=run_id, shard=shard)

    def append(
        self,
        conn: Connection,
        result: AuditResult,
        pull_counts: Mapping[str, Any],
        *,
        source: str = "audit",
        run_id: str | None = None,
        summary: Mapping[str, int] | None = None,
        shard: Shard | None = None,
    ) -> StoredRun:
        """Append inside a `write()` transaction (the caller holds the lock)."""
        row: dict[str, Any] = {
            "run_id": shard.run_id if shard else (run_id or new_run_id(result)),
            "group_id": shard.group_id if shard else None,
            "shard": f"{shard.index}/{shard.count}" if shard else None,
            "plan_sha256": shard.plan_sha256 if shard else None,
            "source": "shard" if shard else source,
            "tool_version": result.version,
            "started_at": result.started_at.isoformat(),
            "finished_at": result.finished_at.isoformat(),
            "environment": result.environment,
            "targets": _json([{"name": t.name, "kind": t.kind, "complete": t.complete} for t in result.targets]),
            "summary": _json(dict(summary) if summary is not None else result.summary()),
            "pull_counts": _json(pull_counts),
        }
        finding_rows = [_finding_row(f) for f in result.findings]
        head = conn.execute(select(runs.c.seq, runs.c.content_sha256).order_by(runs.c.seq.desc()).limit(1)).first()
        row["seq"] = head.seq + 1 if head else 1
        row["previous_sha256"] = head.content_sha256 if head else GENESIS
        row["content_sha256"] = run_content_hash(row, finding_rows)
        inserted = conn.execute(insert(runs).values(**row)).inserted_primary_key
        assert inserted is not None
        pk = inserted[0]
        for start in range(0, len(finding_rows), FINDINGS_BATCH):
            batch = finding_rows[start : start + FINDINGS_BATCH]
            conn.execute(insert(findings), [{**f, "run": pk} for f in batch])
        return _stored_run(row)

    # ------------------------------------------------------------------ reading

    def runs(self, *, target: str | None = None, since: str | None = None, last: int | None = None) -> list[StoredRun]:
        """Stored runs, oldest first; `target` keeps runs that audited it (or
        one of its scopes, `org-ecr/123456789012/us-east-1` for `org-ecr`),
        `since` (ISO date or time) runs started at or after it, `last` the
        newest N."""
        query = select(runs).order_by(runs.c.seq.desc() if last else runs.c.seq)
        if since:
            query = query.where(runs.c.started_at >= since)
        if last:
            query = query.limit(last)
        with self.engine.connect() as conn:
            found = [_stored_run(dict(r._mapping)) for r in conn.execute(query)]
        if last:
            found.reverse()
        if target is not None:
            found = [r for r in found if any(names_scope_of(str(t.get("name")), target) for t in r.targets)]
        return found

    def run(self, run_id: str) -> StoredRun:
        """The run with this id, or a unique id prefix (`regguard history` shows ids)."""
        with self.engine.connect() as conn:
            exact = conn.execute(select(runs).where(runs.c.run_id == run_id)).first()
            if exact is not None:
                return _stored_run(dict(exact._mapping))
            rows = conn.execute(select(runs).where(runs.c.run_id.startswith(run_id, autoescape=True)).limit(2)).all()
        if len(rows) != 1:
            why = "no stored run" if not rows else "more than one stored run"
            raise HistoryError(f"{why} has the id {run_id!r} (see `regguard history`)")
        return _stored_run(dict(rows[0]._mapping))

    def shards(self, group_id: str) -> list[StoredRun]:
        """The stored shards of run `group_id`, in chain order."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(runs).where(runs.c.group_id == group_id).order_by(runs.c.seq))
            return [_stored_run(dict(r._mapping)) for r in rows]

    def findings(self, run: StoredRun) -> list[StoredFinding]:
        """The run's findings in the order they were stored: one query (joined on the run id)."""
        query = (
            select(findings)
            .join(runs, findings.c.run == runs.c.id)
            .where(runs.c.run_id == run.run_id)
            .order_by(findings.c.id)
        )
        with self.engine.connect() as conn:
            return [_stored_finding(dict(r._mapping)) for r in conn.execute(query)]

    def pull_baseline(self) -> dict[str, dict[str, dict[str, int]]]:
        """target -> repository -> {day: pulls} over the newest runs (a later
        run's count for the same day wins) — RG-MON-002's baseline."""
        query = select(runs.c.pull_counts).order_by(runs.c.seq.desc()).limit(MAX_BASELINE_RUNS)
        with self.engine.connect() as conn:
            stored = [json.loads(r.pull_counts) for r in conn.execute(query)]
        merged: dict[str, dict[str, dict[str, int]]] = {}
        for counts in reversed(stored):
            for target, repos in counts.items():
                for repo, days in repos.items():
                    merged.setdefault(target, {}).setdefault(repo, {}).update(days)
        return merged

    def trend(self, last: int = 30) -> list[TrendPoint]:
        """Passed and failed findings per target in the newest `last` runs —
        exactly those: another writer (a parallel shard) may append a run
        between reading the runs and counting their findings."""
        chosen = self.runs(last=last)
        if not chosen:
            return []
        seqs = {r.seq: r for r in chosen}
        query = (
            select(runs.c.seq, findings.c.target, findings.c.status, func.count())
            .join(findings, findings.c.run == runs.c.id)
            .where(runs.c.seq.in_(sorted(seqs)))
            .group_by(runs.c.seq, findings.c.target, findings.c.status)
        )
        counts: dict[tuple[int, str], dict[str, int]] = {}
        with self.engine.connect() as conn:
            for seq, target, status, n in conn.execute(query):
                counts.setdefault((seq, target), {})[status] = n
        return [
            TrendPoint(seqs[seq].run_id, seqs[seq].started_at, target, c.get("pass", 0), c.get("fail", 0))
            for (seq, target), c in sorted(counts.items())
        ]

    def imported(self, conn: Connection, directory: Path) -> bool:
        found = conn.execute(select(imports.c.directory).where(imports.c.directory == str(directory))).first()
        return found is not None

    def mark_imported(self, conn: Connection, directory: Path, count: int) -> None:
        conn.execute(insert(imports).values(directory=str(directory), imported_at=utcnow().isoformat(), runs=count))


def new_run_id(result: AuditResult) -> str:
    """Sortable by time and unique across concurrent writers."""
    return f"{result.started_at.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(4)}"


def _create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
        _serialise_sqlite_writers(engine)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _serialise_sqlite_writers(engine: Engine) -> None:
    """pysqlite's own transaction handling defers the lock to the first write,
    so two writers could both read the same chain head. Taking the write lock
    when the transaction begins (`BEGIN IMMEDIATE`) serialises them; WAL lets
    readers carry on meanwhile."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA journal_mode=WAL")

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _finding_row(f: Finding) -> dict[str, Any]:
    return {
        "rule": f.rule,
        "target": f.target,
        "resource": f.resource,
        "status": f.status.value,
        "severity": f.severity.value,
        "message": f.message,
        "evidence_sha256": evidence_digest(f.evidence),
        "waiver": _json(f.waiver.as_dict()) if f.waiver else None,
    }


def _stored_run(row: Mapping[str, Any]) -> StoredRun:
    return StoredRun(
        seq=row["seq"],
        run_id=row["run_id"],
        source=row["source"],
        tool_version=row["tool_version"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        environment=row["environment"],
        targets=tuple(json.loads(row["targets"])),
        summary=json.loads(row["summary"]),
        previous_sha256=row["previous_sha256"],
        content_sha256=row["content_sha256"],
        group_id=row.get("group_id"),
        shard=row.get("shard"),
        plan_sha256=row.get("plan_sha256"),
    )


def _stored_finding(row: Mapping[str, Any]) -> StoredFinding:
    return StoredFinding(
        rule=row["rule"],
        target=row["target"],
        resource=row["resource"],
        status=row["status"],
        severity=row["severity"],
        message=row["message"],
        evidence_sha256=row["evidence_sha256"],
        waiver=json.loads(row["waiver"]) if row["waiver"] else None,
    )


__all__ = ["HistoryDB", "HistoryError", "StoredFinding", "StoredRun"]
