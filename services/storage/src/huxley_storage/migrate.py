"""Running the Alembic migrations from code, on an async engine.

Alembic is imported only when a migration has to run: a database already at
HEAD_REVISION is recognised with one SELECT (importing Alembic costs about a
second of CPU at every start). tests/storage/test_migrations.py checks that
HEAD_REVISION is the head of the migrations directory.
"""

from __future__ import annotations

import asyncio
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
HEAD_REVISION = "0002"  # the newest file in migrations/versions


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head() -> str:
    """The head revision, as Alembic reads it from the migrations directory."""
    from alembic.script import ScriptDirectory

    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision is not None
    return revision


def current(connection: Connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return str(rows[0]) if len(rows) == 1 else None


# Alembic's `context` is one per process: two databases migrated at once (a
# new room's and another's first requests) ran each other's steps. One
# migration at a time, per event loop.
_migrating: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the database to the newest schema (a no-op when it is there)."""

    def run(connection: Connection) -> None:
        if current(connection) != HEAD_REVISION:
            from alembic import command

            command.upgrade(alembic_config(connection), "head")

    lock = _migrating.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    async with lock, engine.begin() as conn:
        await conn.run_sync(run)
