"""The schema, the same on both backends.

Every table carries the persona, even in a per-persona SQLite file, so rows
look the same everywhere and move between backends unchanged. Keys compare
byte-wise ("C" collation on PostgreSQL, BINARY on SQLite), so `list` sorts
the way Python sorts strings on both.
"""

from __future__ import annotations

import sqlalchemy as sa

NAME = sa.String(64)
KEY = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
EPOCH: sa.Double[float] = sa.Double()  # seconds since the Unix epoch

metadata = sa.MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(referred_table_name)s",
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    }
)

settings = sa.Table(
    "settings",
    metadata,
    sa.Column("persona", NAME, primary_key=True),
    sa.Column("skill", NAME, primary_key=True),
    sa.Column("key", KEY, primary_key=True),
    sa.Column("value", sa.Text(), nullable=False),
    sa.Column("updated_at", EPOCH, nullable=False),
)

schema_meta = sa.Table(
    "schema_meta",
    metadata,
    sa.Column("persona", NAME, primary_key=True),
    sa.Column("skill", NAME, primary_key=True),
    sa.Column("data_schema_version", sa.Integer(), nullable=False),
    sa.Column("updated_at", EPOCH, nullable=False),
)

# One row per persona: the next session id, so ids are never reused even
# after the newest session was deleted.
personas = sa.Table(
    "personas",
    metadata,
    sa.Column("persona", NAME, primary_key=True),
    sa.Column("next_session_id", sa.Integer(), nullable=False),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("persona", NAME, primary_key=True),
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("started_at", EPOCH, nullable=False),
    sa.Column("last_active_at", EPOCH, nullable=False),
    sa.Column("ended_at", EPOCH, nullable=True),
    sa.Column("summary", sa.Text(), nullable=True),
    sa.Column("turn_count", sa.Integer(), nullable=False),
    sa.Index(None, "persona", "last_active_at"),
)

turns = sa.Table(
    "turns",
    metadata,
    sa.Column("persona", NAME, primary_key=True),
    sa.Column("session_id", sa.Integer(), primary_key=True),
    sa.Column("idx", sa.Integer(), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("text", sa.Text(), nullable=False),
    sa.Column("turn_id", sa.String(128), nullable=True),
    sa.Column("ts", EPOCH, nullable=False),
    # The writer's id for this line: a retry that finds it is answered, not appended again.
    sa.Column("record_id", sa.String(64), nullable=True),
    sa.ForeignKeyConstraint(
        ["persona", "session_id"], ["sessions.persona", "sessions.id"], ondelete="CASCADE"
    ),
)
