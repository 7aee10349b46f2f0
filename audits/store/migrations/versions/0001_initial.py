"""History in a database: runs (hash-chained), their findings, imported JSON history.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), nullable=False, unique=True),
        sa.Column("seq", sa.Integer, nullable=False, unique=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("tool_version", sa.String(64), nullable=False),
        sa.Column("started_at", sa.String(40), nullable=False),
        sa.Column("finished_at", sa.String(40), nullable=False),
        sa.Column("environment", sa.String(200), nullable=False),
        sa.Column("targets", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("pull_counts", sa.Text, nullable=False),
        sa.Column("previous_sha256", sa.String(64), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
    )
    op.create_table(
        "findings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("resource", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("evidence_sha256", sa.String(64), nullable=False),
        sa.Column("waiver", sa.Text, nullable=True),
        sa.UniqueConstraint("run", "rule", "target", "resource", name="uq_findings_identity"),
    )
    op.create_index("ix_findings_run", "findings", ["run"])
    op.create_table(
        "json_imports",
        sa.Column("directory", sa.String(1000), primary_key=True),
        sa.Column("imported_at", sa.String(40), nullable=False),
        sa.Column("runs", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("json_imports")
    op.drop_index("ix_findings_run", "findings")
    op.drop_table("findings")
    op.drop_table("runs")
