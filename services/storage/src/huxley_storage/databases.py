"""Where the data lives: one SQLite file per persona, or one PostgreSQL database.

A `Database` is an engine whose migrations run the first time it is used
(retried on the next use if the database was not reachable). A backend maps
a persona to its database:

- `SqliteBackend`: `<root>/<persona>/huxley.db`, WAL journal, opened lazily.
  Writes go one at a time through an asyncio lock, so transactions never
  fight over SQLite's single writer lock. Settings batches take the same
  lock and go through a plain `sqlite3` writer (sqlite_writer.py).
- `PostgresBackend`: every persona in one database (a `persona` column).
  Transactions run in parallel on pooled connections; a connection idle for
  a while is tested at checkout (not every one: a test is three round trips).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
import sqlalchemy.exc as sa_exc
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from huxley_storage import migrate
from huxley_storage.sqlite_writer import SqliteWriter, pragmas
from huxley_storage.tables import metadata
from huxley_wire.subjects import InvalidToken, token

SQLITE_FILE = "huxley.db"
SQLITE_BUSY_TIMEOUT_S = 5.0
# A pooled PostgreSQL connection unused for this long is tested before use
# (a server restart kills them); a busier one is not, and if it died anyway
# its request answers `unavailable` and the pool is renewed.
PG_PING_AFTER_IDLE_S = 1.0


class Database:
    def __init__(
        self, name: str, engine: AsyncEngine, *, one_writer: bool, batches: SqliteWriter | None = None
    ) -> None:
        self.name = name
        self.engine = engine
        self.batches = batches  # SQLite: the writer of whole settings batches
        self._migrated = False
        self._migrating = asyncio.Lock()
        self._writer = asyncio.Lock() if one_writer else None

    @property
    def is_migrated(self) -> bool:
        return self._migrated

    async def migrated(self) -> None:
        if self._migrated:
            return
        async with self._migrating:
            if not self._migrated:
                await migrate.upgrade(self.engine)
                self._migrated = True

    @contextlib.asynccontextmanager
    async def transaction(self, *, write: bool) -> AsyncIterator[AsyncConnection]:
        """A transaction that commits when the block ends without an error."""
        await self.migrated()
        writer = self._writer if write and self._writer is not None else contextlib.nullcontext()
        async with writer, self.engine.begin() as conn:
            yield conn

    async def write_batch[T](self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work` in one transaction of the SQLite batch writer, after the
        migrations and in turn with the engine's write transactions."""
        if self.batches is None:
            raise RuntimeError(f"database {self.name} has no batch writer")
        await self.migrated()
        writer = self._writer if self._writer is not None else contextlib.nullcontext()
        async with writer:
            return await self.batches.run(work)

    async def ping(self) -> None:
        await self.migrated()
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def dispose(self) -> None:
        if self.batches is not None:
            await self.batches.close()
        await self.engine.dispose()


class Backend(Protocol):
    kind: str  # "sqlite" or "postgresql"
    parallel_writes: int  # write transactions that may run at once on one database
    location: str  # where the data is, for logs and health (never a password)

    def database_name(self, persona: str) -> str:
        """The name failures and health use for the database holding `persona`."""
        ...

    async def database(self, persona: str) -> Database: ...

    async def personas(self) -> list[str]:
        """Every persona with data, sorted."""
        ...

    def open_databases(self) -> list[str]: ...

    async def close(self) -> None: ...


class SqliteBackend:
    kind = "sqlite"
    parallel_writes = 1  # one writer per file (the lock in Database)

    def __init__(self, root: Path, synchronous: str = "FULL") -> None:
        self.root = root
        self.synchronous = synchronous
        self.location = f"{root}/<persona>/{SQLITE_FILE}"
        self._open: dict[str, Database] = {}
        self._opening = asyncio.Lock()

    def path(self, persona: str) -> Path:
        return self.root / token(persona, "persona") / SQLITE_FILE

    def database_name(self, persona: str) -> str:
        return persona

    async def database(self, persona: str) -> Database:
        found = self._open.get(persona)
        if found is not None:
            return found
        async with self._opening:
            if persona not in self._open:
                path = self.path(persona)
                await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
                batches = SqliteWriter(path, self.synchronous, SQLITE_BUSY_TIMEOUT_S)
                self._open[persona] = Database(persona, self._engine(path), one_writer=True, batches=batches)
            return self._open[persona]

    def _engine(self, path: Path) -> AsyncEngine:
        engine = create_async_engine(
            f"sqlite+aiosqlite:///{path}", connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S}
        )
        setup = pragmas(self.synchronous)

        @event.listens_for(engine.sync_engine, "connect")
        def _configure(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            for pragma in setup:
                cursor.execute(pragma)
            cursor.close()

        return engine

    async def personas(self) -> list[str]:
        def scan() -> list[str]:
            if not self.root.is_dir():
                return []
            found = []
            for entry in self.root.iterdir():
                with contextlib.suppress(InvalidToken):
                    if (entry / SQLITE_FILE).is_file() and token(entry.name):
                        found.append(entry.name)
            return sorted(found)

        return await asyncio.to_thread(scan)

    def open_databases(self) -> list[str]:
        return sorted(self._open)

    async def close(self) -> None:
        for db in self._open.values():
            await db.dispose()
        self._open.clear()


class PostgresBackend:
    kind = "postgresql"
    # PostgreSQL groups the WAL flushes of concurrent commits itself; leave
    # the rest of the pool (5 + 10 overflow) to reads.
    parallel_writes = 4

    def __init__(self, url: str, *, connect_timeout_s: float = 1.0, command_timeout_s: float = 5.0) -> None:
        engine = create_async_engine(
            url,
            pool_size=5,
            max_overflow=10,
            pool_timeout=connect_timeout_s,
            connect_args={"timeout": connect_timeout_s, "command_timeout": command_timeout_s},
        )
        _ping_idle_connections(engine)
        self.location = engine.url.render_as_string(hide_password=True)
        self._db = Database("postgresql", engine, one_writer=False)

    def database_name(self, persona: str) -> str:
        return self._db.name

    async def database(self, persona: str) -> Database:
        token(persona, "persona")
        return self._db

    async def personas(self) -> list[str]:
        tables = [metadata.tables[name] for name in ("personas", "settings", "schema_meta")]
        query = sa.union(*(sa.select(t.c.persona) for t in tables))
        async with self._db.transaction(write=False) as conn:
            return sorted(await conn.scalars(query))

    def open_databases(self) -> list[str]:
        return [self._db.name] if self._db.is_migrated else []

    async def close(self) -> None:
        await self._db.dispose()


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """A server restart kills pooled connections: test one at checkout if it
    sat idle, and open a new one instead if it is dead, so the service
    recovers by itself. (pool_pre_ping would test every checkout.)"""

    @event.listens_for(engine.sync_engine, "checkin")
    def _idle_from(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _test_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PG_PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise sa_exc.DisconnectionError(f"pooled connection is dead: {exc}") from exc
