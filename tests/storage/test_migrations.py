"""Alembic migrations run on start (each SQLite file when first opened, the
PostgreSQL database once) and build exactly the schema the code declares."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection

from huxley_runtime.storage_client import SettingsClient
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
