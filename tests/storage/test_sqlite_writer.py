"""The SQLite batch writer (sqlite_writer.py): one transaction per batch, the
durability settings of the engine's connections, nothing of a failed or
killed batch left in the file, and a working writer after each failure."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from huxley_storage.databases import Database, SqliteBackend
from huxley_storage.repo import settings_sqlite

PERSONA = "writer"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    backend = SqliteBackend(tmp_path)
    yield await backend.database(PERSONA)
    await backend.close()


def row(key: str, value: str = "v") -> settings_sqlite.Row:
    return (PERSONA, "timers", key, value, 1.0)


def stored(path: Path) -> dict[str, str]:
    """The settings rows as another connection sees them."""
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT key, value FROM settings ORDER BY key").fetchall())


def path_of(db: Database) -> Path:
    assert db.batches is not None
    return db.batches.path


async def test_a_batch_commits_with_full_sync_in_wal(db: Database):
    def work(conn: sqlite3.Connection) -> tuple[int, str, bool]:
        settings_sqlite.put_many(conn, [row("a"), row("b")])
        synchronous = conn.execute("PRAGMA synchronous").fetchone()[0]
        journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
        return synchronous, journal, conn.in_transaction

    synchronous, journal, in_transaction = await db.write_batch(work)
    assert (synchronous, journal, in_transaction) == (2, "wal", True)  # 2 is FULL
    assert stored(path_of(db)) == {"a": "v", "b": "v"}


async def test_a_batch_that_raises_leaves_nothing_and_the_writer_goes_on(db: Database):
    def refused(conn: sqlite3.Connection) -> None:
        settings_sqlite.put(conn, row("first"))
        settings_sqlite.put(conn, (PERSONA, "timers", "null", None, 1.0))  # type: ignore[arg-type]

    with pytest.raises(sqlite3.IntegrityError):
        await db.write_batch(refused)
    assert stored(path_of(db)) == {}
    await db.write_batch(lambda conn: settings_sqlite.put(conn, row("after")))
    assert stored(path_of(db)) == {"after": "v"}


async def test_a_refused_commit_is_rolled_back(db: Database):
    """A deferred constraint fails at COMMIT: the batch is undone, and the
    transaction is not left open for the next one."""
    with sqlite3.connect(path_of(db)) as conn:
        conn.executescript(
            "CREATE TABLE parent (id INTEGER PRIMARY KEY); "
            "CREATE TABLE child (ref INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);"
        )

    def poisoned(conn: sqlite3.Connection) -> None:
        settings_sqlite.put(conn, row("poisoned"))
        conn.execute("INSERT INTO child VALUES (1)")

    with pytest.raises(sqlite3.IntegrityError):
        await db.write_batch(poisoned)
    assert stored(path_of(db)) == {}
    await db.write_batch(lambda conn: settings_sqlite.put(conn, row("next")))
    assert stored(path_of(db)) == {"next": "v"}


async def test_a_locked_file_fails_the_batch_and_the_next_one_commits(db: Database):
    await db.migrated()
    assert db.batches is not None
    db.batches.busy_timeout_s = 0.05  # before the writer opens its connection
    path = path_of(db)
    with sqlite3.connect(path) as holder:
        holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await db.write_batch(lambda conn: settings_sqlite.put(conn, row("locked")))
        holder.rollback()
    await db.write_batch(lambda conn: settings_sqlite.put(conn, row("after")))
    assert stored(path) == {"after": "v"}


KILLED_MID_BATCH = textwrap.dedent(
    """
    import asyncio, sys, threading
    from pathlib import Path
    from huxley_storage.databases import SqliteBackend
    from huxley_storage.repo import settings_sqlite

    def row(key):
        return ("writer", "timers", key, "v", 1.0)

    def stuck(conn):
        settings_sqlite.put_many(conn, [row("uncommitted-1"), row("uncommitted-2")])
        print("inside", flush=True)
        threading.Event().wait()  # killed here, before COMMIT

    async def main():
        db = await SqliteBackend(Path(sys.argv[1])).database("writer")
        await db.write_batch(lambda conn: settings_sqlite.put(conn, row("committed")))
        print("acknowledged committed", flush=True)
        await db.write_batch(stuck)
        print("acknowledged uncommitted", flush=True)

    asyncio.run(main())
    """
)


async def test_a_batch_killed_before_its_commit_is_neither_acknowledged_nor_stored(tmp_path: Path):
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_MID_BATCH, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert child.stdout is not None
        said = [await asyncio.to_thread(child.stdout.readline) for _ in range(2)]
        assert said == ["acknowledged committed\n", "inside\n"]
        os.kill(child.pid, signal.SIGKILL)
        rest = await asyncio.to_thread(child.stdout.read)
    finally:
        child.kill()
        child.wait()
    assert "acknowledged uncommitted" not in rest
    assert stored(tmp_path / PERSONA / "huxley.db") == {"committed": "v"}
