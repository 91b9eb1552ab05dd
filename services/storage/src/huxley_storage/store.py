"""The databases as the bus adapter sees them: transactions per persona, and
every database failure turned into `unavailable`, remembered for health until
the database answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import sqlalchemy.exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection

from huxley_runtime.logging import get_logger
from huxley_storage.databases import Backend
from huxley_wire.errors import ErrorCode, WireError

log = get_logger(component="store")

# SQLSTATE classes that mean "no usable database right now": connection
# exceptions, authorization, no such database, insufficient resources,
# operator intervention (shutdown, starting up), system errors.
OUTAGE_SQLSTATE_CLASSES = ("08", "28", "3D", "53", "57", "58")

# The persona named when checking the PostgreSQL database as a whole (it
# holds every persona, so any name reaches it).
PROBE_PERSONA = "storage"


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached or used (as opposed
    to a bug in a query)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError | TimeoutError | sa_exc.TimeoutError | sa_exc.DisconnectionError):
            return True
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, sa_exc.OperationalError | sa_exc.InterfaceError):
            return True
        if isinstance(current, sqlite3.OperationalError) or type(current) is sqlite3.DatabaseError:
            return True  # can't open, locked, read-only, I/O error, not a database
        if isinstance(current, asyncpg.PostgresConnectionError | asyncpg.InterfaceError):
            return True
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate[:2] in OUTAGE_SQLSTATE_CLASSES:
            return True
        current = getattr(current, "orig", None) or current.__cause__
    return False


def describe(exc: BaseException) -> str:
    root: BaseException = exc
    while (inner := getattr(root, "orig", None) or root.__cause__) is not None and inner is not root:
        root = inner
    text = str(root).strip().splitlines()[0] if str(root).strip() else ""
    return f"{type(root).__name__}: {text}" if text else type(root).__name__


@dataclass
class Outage:
    persona: str  # one persona whose requests failed: the probe opens its database
    error: str
    since: float


class Store:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.outages: dict[str, Outage] = {}
        self.available = asyncio.Event()  # set while no database is known to be down
        self.available.set()

    @contextlib.asynccontextmanager
    async def transaction(self, persona: str, *, write: bool = False) -> AsyncIterator[AsyncConnection]:
        """A transaction on the persona's database; it has committed when the
        block is left without an error. Database failures become
        `WireError(unavailable)`."""
        async with self._guard(persona):
            db = await self.backend.database(persona)
            async with db.transaction(write=write) as conn:
                yield conn

    @property
    def batch_writes(self) -> bool:
        """Whether settings batches go through `write_batch` (SQLite)."""
        return self.backend.kind == "sqlite"

    async def write_batch[T](self, persona: str, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work` in one transaction of the persona's SQLite batch writer
        (committed when this returns); outages as in `transaction`."""
        async with self._guard(persona):
            db = await self.backend.database(persona)
            return await db.write_batch(work)

    async def personas(self) -> list[str]:
        """Every persona with data (database failures become `unavailable`)."""
        async with self._guard(PROBE_PERSONA, track=False):
            return await self.backend.personas()

    @contextlib.asynccontextmanager
    async def _guard(self, persona: str, *, track: bool = True) -> AsyncIterator[None]:
        """Outages become `unavailable`; with `track`, health remembers them
        and the probe retries the persona's database until it answers."""
        name = self.backend.database_name(persona)
        try:
            yield
        except WireError:
            raise
        except Exception as exc:
            if not is_outage(exc):
                raise
            if track:
                self._failed(name, persona, exc)
            raise WireError(ErrorCode.UNAVAILABLE, f"database {name} unavailable: {describe(exc)}") from exc
        if track:
            self._recovered(name)

    async def probe(self) -> None:
        """Try every database that failed; the ones that answer are back."""
        for name, outage in list(self.outages.items()):
            try:
                db = await self.backend.database(outage.persona)
                await db.ping()
            except Exception as exc:
                if not is_outage(exc):
                    log.exception("database_probe_failed", database=name)
                outage.error = describe(exc)
            else:
                self._recovered(name)

    async def check(self, persona: str = PROBE_PERSONA) -> None:
        """Open (and migrate) the persona's database now, recording a failure."""
        with contextlib.suppress(WireError):
            async with self.transaction(persona):
                pass

    def _failed(self, name: str, persona: str, exc: BaseException) -> None:
        if name not in self.outages:
            log.error("database_unavailable", database=name, error=describe(exc))
            self.outages[name] = Outage(persona, describe(exc), time.time())
            self.available.clear()
        else:
            self.outages[name].error = describe(exc)

    def _recovered(self, name: str) -> None:
        outage = self.outages.pop(name, None)
        if outage is not None:
            log.info("database_recovered", database=name, down_s=round(time.time() - outage.since, 1))
            if not self.outages:
                self.available.set()

    def detail(self) -> dict[str, Any]:
        return {
            "backend": self.backend.kind,
            "location": self.backend.location,
            "databases_open": self.backend.open_databases(),
            "unavailable": {name: o.error for name, o in sorted(self.outages.items())},
        }
