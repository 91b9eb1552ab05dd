"""Settings, schema versions, sessions and transcript turns.

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

NAME = sa.String(64)
KEY = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "settings",
        sa.Column("persona", NAME, nullable=False),
        sa.Column("skill", NAME, nullable=False),
        sa.Column("key", KEY, nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("persona", "skill", "key", name="pk_settings"),
    )
    op.create_table(
        "schema_meta",
        sa.Column("persona", NAME, nullable=False),
        sa.Column("skill", NAME, nullable=False),
        sa.Column("data_schema_version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("persona", "skill", name="pk_schema_meta"),
    )
    op.create_table(
        "personas",
        sa.Column("persona", NAME, nullable=False),
        sa.Column("next_session_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("persona", name="pk_personas"),
    )
    op.create_table(
        "sessions",
        sa.Column("persona", NAME, nullable=False),
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("started_at", sa.Double(), nullable=False),
        sa.Column("last_active_at", sa.Double(), nullable=False),
        sa.Column("ended_at", sa.Double(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("turn_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("persona", "id", name="pk_sessions"),
    )
    op.create_index("ix_sessions_persona_last_active_at", "sessions", ["persona", "last_active_at"])
    op.create_table(
        "turns",
        sa.Column("persona", NAME, nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("turn_id", sa.String(128), nullable=True),
        sa.Column("ts", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["persona", "session_id"],
            ["sessions.persona", "sessions.id"],
            name="fk_turns_sessions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("persona", "session_id", "idx", name="pk_turns"),
    )


def downgrade() -> None:
    op.drop_table("turns")
    op.drop_index("ix_sessions_persona_last_active_at", table_name="sessions")
    op.drop_table("sessions")
    op.drop_table("personas")
    op.drop_table("schema_meta")
    op.drop_table("settings")
