"""Shard plans: which scopes a shard saw its part of (`--shard I/N`).

Every shard of a run lists the same scopes and takes its block of them; if the
estate or the config changed between shards (an Organization account added, a
target edited), the blocks no longer add up. Each shard stores the SHA-256 of
the full scope list it partitioned, and the merge reports shards that differ.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("plan_sha256", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("plan_sha256")
