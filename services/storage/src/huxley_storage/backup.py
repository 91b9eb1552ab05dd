"""Daily online backups of every SQLite database, the newest few kept.

A backup is made with SQLite's online backup API through the service's own
driver connection, so writers go on while it runs and the copy is one
consistent snapshot. It is written to a `.partial` file, switched to a
rollback journal (a single self-contained file), synced, and renamed into
place, so a crash mid-way never leaves a broken backup under a real name.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import aiosqlite

from huxley_runtime.logging import get_logger
from huxley_storage import backup_policy
from huxley_storage.databases import Database, SqliteBackend

log = get_logger(component="backup")

BACKUP_DIR = "backups"


async def backup_to(db: Database, target: Path) -> None:
    """An online backup of `db` into the file `target` (replaced atomically)."""
    partial = target.with_name(target.name + ".partial")
    await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
    partial.unlink(missing_ok=True)
    async with db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        source: aiosqlite.Connection = raw.driver_connection  # type: ignore[assignment]
        # The copy is written from the source connection's thread.
        async with aiosqlite.connect(partial, check_same_thread=False) as copy:
            await source.backup(copy)
            await copy.execute("PRAGMA journal_mode=DELETE")
            await copy.commit()
    await asyncio.to_thread(_sync_and_rename, partial, target)


def _sync_and_rename(partial: Path, target: Path) -> None:
    fd = os.open(partial, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    partial.replace(target)
    fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class LastBackup:
    persona: str
    path: str
    at: float


class Backups:
    """Runs the policy over every persona's database on disk."""

    def __init__(self, backend: SqliteBackend, keep: int = backup_policy.DEFAULT_KEEP) -> None:
        self.backend = backend
        self.keep = keep
        self.last: LastBackup | None = None
        self.last_error: str | None = None
        self.ran = asyncio.Event()  # set once a run has finished (for tests and health)

    def directory(self, persona: str) -> Path:
        return self.backend.path(persona).parent / BACKUP_DIR

    def existing(self, persona: str) -> dict[date, Path]:
        folder = self.directory(persona)
        if not folder.is_dir():
            return {}
        found = {}
        for entry in folder.iterdir():
            day = backup_policy.backup_day(entry.name)
            if day is not None:
                found[day] = entry
        return found

    async def run(self, today: date) -> list[Path]:
        """Back up every database that has no backup for `today`, then prune.
        Returns the backups made; one database failing does not stop the rest."""
        made = []
        for persona in await self.backend.personas():
            try:
                existing = await asyncio.to_thread(self.existing, persona)
                if backup_policy.backup_due(existing, today):
                    target = self.directory(persona) / backup_policy.backup_name(today)
                    await backup_to(await self.backend.database(persona), target)
                    existing[today] = target
                    made.append(target)
                    self.last = LastBackup(persona, str(target), time.time())
                    log.info("backup_made", persona=persona, path=str(target))
                for day in backup_policy.expired(existing, self.keep):
                    await asyncio.to_thread(existing[day].unlink, missing_ok=True)
                    log.info("backup_deleted", persona=persona, path=str(existing[day]))
            except Exception as exc:
                self.last_error = f"{persona}: {type(exc).__name__}: {exc}"
                log.error("backup_failed", persona=persona, error=repr(exc))
        self.ran.set()
        return made

    def detail(self) -> dict[str, Any]:
        last = None
        if self.last is not None:
            last = {"persona": self.last.persona, "path": self.last.path, "at": self.last.at}
        return {"last_backup": last, "backup_error": self.last_error, "backups_kept": self.keep}
