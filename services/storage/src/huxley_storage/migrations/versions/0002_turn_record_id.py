"""Transcript turns carry the writer's record id, so a retried append is stored once.

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
    op.add_column("turns", sa.Column("record_id", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("turns") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("record_id")
