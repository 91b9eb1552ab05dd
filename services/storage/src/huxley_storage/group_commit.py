"""Group commit of settings writes: the writes to one database that arrive
while a commit is running share the next transaction, and so one fsync.

Each write is still answered only after the transaction holding it
committed. Inside a batch the writes run in arrival order; one that the
database refuses (a constraint, a trigger) fails alone and the others
commit. If the transaction itself fails (an outage, a commit refused at the
end) every write of the batch fails with `unavailable`: none is acknowledged,
so none can be lost. The cache is changed only after the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncConnection

from huxley_storage.repo import settings
from huxley_storage.settings_cache import Namespace, SettingsCache
from huxley_storage.store import Store, describe, is_outage
from huxley_wire.errors import ErrorCode, WireError

MAX_BATCH = 512


@dataclass
class SetOp:
    persona: str
    skill: str
    key: str
    value: str
    now: float


@dataclass
class DeleteOp:
    persona: str
    skill: str
    key: str


Op = SetOp | DeleteOp


@dataclass
class _Pending:
    op: Op
    done: asyncio.Future[bool]
    error: BaseException | None = None
    result: bool = False


@dataclass
class Stats:
    batches: int = 0
    writes: int = 0
    largest: int = 0
    failed_batches: int = 0

    def record(self, size: int) -> None:
        self.batches += 1
        self.writes += size
        self.largest = max(self.largest, size)


@dataclass
class GroupCommit:
    """The write queue of one database (one persona's SQLite file, or the
    PostgreSQL database of every persona)."""

    store: Store
    cache: SettingsCache
    stats: Stats = field(default_factory=Stats)
    max_batch: int = MAX_BATCH
    on_commit: Callable[[int], None] | None = None  # batch size, for tests and health
    _queue: list[_Pending] = field(default_factory=list)
    _runner: asyncio.Task[None] | None = None

    async def set(self, op: SetOp) -> None:
        await self._submit(op)

    async def delete(self, op: DeleteOp) -> bool:
        return await self._submit(op)

    async def _submit(self, op: Op) -> bool:
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(op, done))
        if self._runner is None:
            self._runner = asyncio.create_task(self._drain(), name="group-commit")
        # The write goes ahead even if this caller stops waiting.
        return await asyncio.shield(done)

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                await self._commit(batch)
        finally:
            self._runner = None

    async def _commit(self, batch: list[_Pending]) -> None:
        persona = batch[0].op.persona  # every op of the batch is in this database
        try:
            async with self.store.transaction(persona, write=True) as conn:
                await _apply(conn, batch)
        except BaseException as exc:
            self.stats.failed_batches += 1
            self.cache.forget({_namespace(p.op) for p in batch})
            failure = exc if isinstance(exc, WireError) else _unavailable(exc)
            for pending in batch:
                if not pending.done.done():
                    pending.done.set_exception(failure)
            if not isinstance(exc, Exception):
                raise  # cancelled: the waiters were told
            return
        self.stats.record(len(batch))
        if self.on_commit is not None:
            self.on_commit(len(batch))
        for pending in batch:
            if pending.error is not None:
                pending.done.set_exception(pending.error)
                continue
            if isinstance(pending.op, SetOp):
                self.cache.committed_set(_namespace(pending.op), pending.op.key, pending.op.value)
            else:
                self.cache.committed_delete(_namespace(pending.op), pending.op.key)
            pending.done.set_result(pending.result)


async def _apply(conn: AsyncConnection, batch: list[_Pending]) -> None:
    """Run the batch's writes in `conn`'s transaction, recording each result.

    A batch of sets only goes in as one statement; if the database refuses it
    (and is not down), the writes are retried one by one so only the refused
    one fails. An outage fails the whole transaction."""
    sets = [p.op for p in batch if isinstance(p.op, SetOp)]
    if len(sets) == len(batch):
        try:
            async with _statement(conn):
                # The last set of a key wins (one statement may not touch a row twice).
                rows = {(op.persona, op.skill, op.key): _row(op) for op in sets}
                await settings.put_many(conn, list(rows.values()))
            return
        except Exception as exc:
            if is_outage(exc):
                raise
    for pending in batch:
        try:
            async with _statement(conn):
                pending.result = await _one(conn, pending.op)
        except Exception as exc:
            if is_outage(exc):
                raise
            pending.error = exc


async def _one(conn: AsyncConnection, op: Op) -> bool:
    if isinstance(op, SetOp):
        await settings.put(conn, op.persona, op.skill, op.key, op.value, op.now)
        return True
    return await settings.delete(conn, op.persona, op.skill, op.key)


@contextlib.asynccontextmanager
async def _statement(conn: AsyncConnection) -> AsyncIterator[None]:
    """PostgreSQL aborts the whole transaction on a failed statement unless it
    ran in a savepoint; SQLite undoes only the failed statement by itself (and
    pysqlite's savepoints are unreliable), so it needs none."""
    if conn.dialect.name == "postgresql":
        async with conn.begin_nested():
            yield
    else:
        yield


def _row(op: SetOp) -> dict[str, object]:
    return {"persona": op.persona, "skill": op.skill, "key": op.key, "value": op.value, "updated_at": op.now}


def _namespace(op: Op) -> Namespace:
    return (op.persona, op.skill)


def _unavailable(exc: BaseException) -> WireError:
    return WireError(
        ErrorCode.UNAVAILABLE, f"database commit failed, no write of its batch was stored: {describe(exc)}"
    )
