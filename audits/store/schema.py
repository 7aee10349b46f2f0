"""The history tables (SQLAlchemy Core). Alembic migrations create them; this
module is what the code reads and writes through, and the migration tests check
the two agree."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, Integer, MetaData, String, Table, Text, UniqueConstraint

metadata = MetaData()

# One row per stored audit run. `seq` orders the chain (1, 2, 3, ... without
# gaps); `content_sha256` hashes the run's canonical content, which includes
# `previous_sha256` (the content hash of run seq-1), so changing, deleting or
# reordering a run breaks the chain at a run `history verify` can name.
runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False, unique=True),
    Column("seq", Integer, nullable=False, unique=True),
    Column("source", String(16), nullable=False),  # "audit" or "json-import"
    Column("tool_version", String(64), nullable=False),
    Column("started_at", String(40), nullable=False),
    Column("finished_at", String(40), nullable=False),
    Column("environment", String(200), nullable=False),
    Column("targets", Text, nullable=False),  # JSON: [{"name", "kind", "complete"}]
    Column("summary", Text, nullable=False),  # JSON: status -> count
    Column("pull_counts", Text, nullable=False),  # JSON: target -> repository -> {day: pulls}
    Column("previous_sha256", String(64), nullable=False),
    Column("content_sha256", String(64), nullable=False),
    # Revision 0002: a shard of a split audit is stored as its own run (its own
    # place in the chain) named "<group_id>.<i>of<n>"; `report --run <group_id>`
    # renders the parts together.
    Column("group_id", String(64), nullable=True, index=True),
    Column("shard", String(16), nullable=True),  # "i/n"
    # Revision 0003: SHA-256 of every scope the shard's partition was cut from.
    Column("plan_sha256", String(64), nullable=True),
)

findings = Table(
    "findings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run", Integer, ForeignKey("runs.id"), nullable=False),
    Column("rule", String(32), nullable=False),
    Column("target", String(200), nullable=False),
    Column("resource", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("evidence_sha256", String(64), nullable=False),
    Column("waiver", Text, nullable=True),  # JSON: {"reason", "approved_by", "expires"}
    UniqueConstraint("run", "rule", "target", "resource", name="uq_findings_identity"),
)
Index("ix_findings_run", findings.c.run)

# Legacy JSON-file history directories already imported (each only once).
imports = Table(
    "json_imports",
    metadata,
    Column("directory", String(1000), primary_key=True),
    Column("imported_at", String(40), nullable=False),
    Column("runs", Integer, nullable=False),
)
