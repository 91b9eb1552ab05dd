"""The batch writer of one SQLite file: a plain `sqlite3` connection owned by
one thread, so a whole group-commit batch costs one hop off the event loop
(BEGIN IMMEDIATE, the statements, COMMIT) instead of one per statement
through aiosqlite and SQLAlchemy.

It is configured like the engine's connections (WAL, the service's
`synchronous`, foreign keys, the busy timeout); the schema is Alembic's,
migrated through the engine before the writer is first used. A transaction
whose work or COMMIT raises is rolled back; after a failure that may have
left the connection unusable (an outage), the next batch opens a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def pragmas(synchronous: str) -> tuple[str, ...]:
    """How every connection to a persona's file is set up: the engine's
    (databases.py) and the batch writer's alike."""
    return ("PRAGMA journal_mode=WAL", f"PRAGMA synchronous={synchronous}", "PRAGMA foreign_keys=ON")


class SqliteWriter:
    def __init__(self, path: Path, synchronous: str, busy_timeout_s: float) -> None:
        self.path = path
        self.synchronous = synchronous
        self.busy_timeout_s = busy_timeout_s
        # One thread: the connection is only ever used from it.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._conn: sqlite3.Connection | None = None

    async def run[T](self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work(conn)` in one transaction, committed when this returns."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._transaction, work)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=False)

    def _transaction[T](self, work: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            result = work(conn)
            conn.execute("COMMIT")
        except BaseException as exc:
            self._abandon(conn, exc)
            raise
        return result

    def _abandon(self, conn: sqlite3.Connection, exc: BaseException) -> None:
        """Roll back what the failed transaction did; drop a connection that
        failed with more than a refused statement."""
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            self._close()
            return
        if not isinstance(exc, sqlite3.IntegrityError | sqlite3.ProgrammingError):
            self._close()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            # Autocommit mode: the transaction is the explicit BEGIN/COMMIT.
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
            try:
                for pragma in pragmas(self.synchronous):
                    conn.execute(pragma)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
