"""Daily online backups of the SQLite databases: consistent while writes go
on, one per day, the newest seven kept."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import date, timedelta
from pathlib import Path

import pytest

from huxley_runtime.rpc import request
from huxley_runtime.storage_client import SettingsClient
from huxley_storage.service import StorageService
from huxley_wire.messages.common import HealthRequest
from support.services import running

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])  # PostgreSQL backups are pg_dump's job

DAY = date(2026, 11, 22)


def backups_of(storage: StorageService, persona: str) -> list[str]:
    assert storage.backups is not None
    folder = storage.backups.directory(persona)
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def read_settings(path: Path) -> dict[str, str]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # one self-contained file
        return dict(db.execute("SELECT key, value FROM settings"))


async def test_a_backup_is_a_consistent_snapshot_taken_while_writing(nc, subjects, persona, storage):
    kv = SettingsClient(nc, subjects, persona, "timers", deadline_s=0)
    await kv.set_setting("w00000", "0")
    written = 1
    stop = asyncio.Event()

    async def writer() -> None:
        nonlocal written
        while not stop.is_set():
            await kv.set_setting(f"w{written:05d}", str(written))
            written += 1

    task = asyncio.create_task(writer())
    try:
        made = await storage.backups.run(DAY)
    finally:
        stop.set()
        await task
    assert [p.name for p in made] == ["huxley-2026-11-22.db"]
    snapshot = read_settings(made[0])
    # The writer is sequential, so a consistent copy holds exactly its first n writes.
    n = len(snapshot)
    assert 1 <= n <= written
    assert snapshot == {f"w{i:05d}": str(i) for i in range(n)}
    assert backups_of(storage, persona) == ["huxley-2026-11-22.db"]


async def test_one_backup_a_day_and_seven_kept(nc, subjects, persona, storage):
    kv = SettingsClient(nc, subjects, persona, "timers", deadline_s=0)
    for n in range(10):
        await kv.set_setting("day", str(n))
        made = await storage.backups.run(DAY + timedelta(days=n))
        assert len(made) == 1
        assert await storage.backups.run(DAY + timedelta(days=n)) == []  # already done today
    assert backups_of(storage, persona) == [f"huxley-{DAY + timedelta(days=n)}.db" for n in range(3, 10)]
    newest = storage.backups.directory(persona) / f"huxley-{DAY + timedelta(days=9)}.db"
    assert read_settings(newest) == {"day": "9"}


async def test_every_persona_is_backed_up_and_health_tells(nc, subjects, persona, storage, site):
    others = [f"{persona}{n}" for n in range(3)]
    for name in others:
        await SettingsClient(nc, subjects, name, "timers", deadline_s=0).set_setting("k", name)
    await storage.backups.run(DAY)
    for name in others:
        assert backups_of(storage, name) == ["huxley-2026-11-22.db"]
        assert read_settings(storage.backups.directory(name) / "huxley-2026-11-22.db") == {"k": name}
    report = await request(nc, subjects.health("storage"), HealthRequest())
    assert report.detail["last_backup"]["path"].endswith("huxley-2026-11-22.db")
    assert report.detail["backups_kept"] == 7


async def test_the_service_backs_up_on_its_own(nc, subjects, persona, storage_settings):
    settings = storage_settings.model_copy(update={"storage_backups": True})
    async with running(StorageService, settings):
        await SettingsClient(nc, subjects, persona, "timers", deadline_s=0).set_setting("k", "v")
    # On the next start the database is there, and today has no backup yet.
    async with running(StorageService, settings) as service:
        folder = service.backups.directory(persona)
        await asyncio.wait_for(service.backups.ran.wait(), 30)
        assert [p.name for p in folder.iterdir()] == [f"huxley-{date.today()}.db"]
