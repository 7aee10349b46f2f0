"""Shards: the parts of one audit run split over several jobs (`--shard I/N --run-id ID`).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("group_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("shard", sa.String(16), nullable=True))
        batch.create_index("ix_runs_group_id", ["group_id"])


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_group_id")
        batch.drop_column("shard")
        batch.drop_column("group_id")
