"""Alembic migrations run on start (each SQLite file when first opened, the
PostgreSQL database once) and build exactly the schema the code declares."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection

from huxley_runtime.storage_client import SessionsClient, SettingsClient
from huxley_storage import migrate
from huxley_storage.service import StorageService
from huxley_storage.tables import metadata
from support.services import running


async def test_migrated_schema_matches_the_code(storage: StorageService, kv: SettingsClient, persona: str):
    await kv.set_setting("k", "v")  # opens (and migrates) the persona's database
    db = await storage.store.backend.database(persona)

    def check(conn: Connection) -> None:
        assert migrate.current(conn) == migrate.head()
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []

    async with db.engine.connect() as conn:
        await conn.run_sync(check)
    opened = [persona] if storage.store.backend.kind == "sqlite" else ["postgresql"]
    assert storage.store.detail()["databases_open"] == opened


async def test_a_restart_keeps_data_and_schema(storage_settings, nc, subjects, persona):
    for n in range(2):
        async with running(StorageService, storage_settings):
            kv = SettingsClient(nc, subjects, persona, "timers", deadline_s=0)
            await kv.set_setting(f"run{n}", str(n))
            assert [k for k, _ in await kv.list_settings("run")] == [f"run{i}" for i in range(n + 1)]


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_files_are_wal_and_synced_at_every_commit(
    storage: StorageService, kv, persona, settings
):
    await kv.set_setting("k", "v")
    path = Path(settings.data_dir) / "storage" / persona / "huxley.db"
    assert path.is_file()
    db = await storage.store.backend.database(persona)
    async with db.engine.connect() as conn:
        assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
        assert (await conn.exec_driver_sql("PRAGMA synchronous")).scalar() == 2  # FULL
        assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_database_made_by_an_older_version_is_upgraded_with_its_data(
    storage_settings, nc, subjects, persona
):
    """0001 -> head on a file with a transcript in it: the turn is still there and
    the new record id works on it."""
    path = storage_settings.data_dir / "storage" / persona / "huxley.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        command.upgrade(migrate.alembic_config(conn), "0001")
        conn.execute(
            sa.text(
                "INSERT INTO sessions (persona, id, started_at, last_active_at, turn_count) "
                "VALUES (:p, 1, 0, 0, 1)"
            ),
            {"p": persona},
        )
        conn.execute(
            sa.text(
                "INSERT INTO turns (persona, session_id, idx, role, text, ts) "
                "VALUES (:p, 1, 0, 'user', 'old', 0)"
            ),
            {"p": persona},
        )
    engine.dispose()
    async with running(StorageService, storage_settings):
        sessions = SessionsClient(nc, subjects, persona, deadline_s=5)
        await sessions.record_turn(1, "assistant", "new", record_id="r-1")
        await sessions.record_turn(1, "assistant", "new", record_id="r-1")
        detail = await sessions.get(1)
    assert [t.text for t in detail.turns] == ["old", "new"]


def test_head_revision_constant_is_the_migrations_head() -> None:
    # Storage skips importing Alembic when a database is at HEAD_REVISION: a new
    # migration must move the constant too.
    assert migrate.head() == migrate.HEAD_REVISION
