"""Group commit of settings writes: the writes to one database that arrive
while a commit is running share the next transaction, and so one fsync.

Each write is still answered only after the transaction holding it
committed. Inside a batch the writes run in arrival order; one that the
database refuses (a constraint, a trigger) fails alone and the others
commit. If the transaction itself fails (an outage, a commit refused at the
end) every write of the batch fails with `unavailable`: none is acknowledged,
so none can be lost. The cache is changed only after the commit.

Where the database allows parallel writers (PostgreSQL), up to
`parallel` batches commit at once. A write never overtakes an earlier one
of the same key: a key in a running batch holds back its later writes
until that batch ended.

On SQLite the whole batch runs in one hop to the file's writer thread
(sqlite_writer.py), as plain `sqlite3` statements; on PostgreSQL it goes
through SQLAlchemy. A batch goes in without savepoints. On PostgreSQL a
refused statement aborts the transaction, so a refused batch is rolled back
and redone one write at a time, each in a savepoint, in a new transaction
(SQLite undoes only the failed statement and goes on in the same one).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from functools import partial

from sqlalchemy.ext.asyncio import AsyncConnection

from huxley_storage.repo import settings, settings_sqlite
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
Key = tuple[str, str, str]  # (persona, skill, key)


class _Refused(Exception):
    """A PostgreSQL batch had a statement refused: redo it one by one."""


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
    most_at_once: int = 0  # batches seen committing at the same time

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
    parallel: int = 1  # batches committing at once
    on_commit: Callable[[int], None] | None = None  # batch size, for tests and health
    _queue: list[_Pending] = field(default_factory=list)
    _busy: Counter[Key] = field(default_factory=Counter)  # keys of the running batches
    _runners: set[asyncio.Task[None]] = field(default_factory=set)
    _committing: int = 0

    async def set(self, op: SetOp) -> None:
        await self._submit(op)

    async def delete(self, op: DeleteOp) -> bool:
        return await self._submit(op)

    async def _submit(self, op: Op) -> bool:
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(op, done))
        if len(self._runners) < self.parallel:
            # It takes its batch when it first runs, so the writes submitted
            # until then share it.
            self._runners.add(asyncio.create_task(self._drain(), name="group-commit"))
        # The write goes ahead even if this caller stops waiting (its future
        # is then cancelled, and left alone by the commit).
        return await done

    async def _drain(self) -> None:
        try:
            while batch := self._take():
                keys = [_key(p.op) for p in batch]
                self._busy.update(keys)
                self._committing += 1
                self.stats.most_at_once = max(self.stats.most_at_once, self._committing)
                try:
                    await self._commit(batch)
                finally:
                    self._committing -= 1
                    self._busy.subtract(keys)
                    self._busy += Counter()  # drop the keys no batch holds any more
        finally:
            # At once, not in a done callback: a write queued from now on
            # must find room for a new runner.
            self._runners.discard(asyncio.current_task())

    def _take(self) -> list[_Pending]:
        """The next batch: queued writes in arrival order, but none of a key
        that a running batch holds, nor after one held back."""
        batch: list[_Pending] = []
        rest: list[_Pending] = []
        held: set[Key] = set()
        for pending in self._queue:
            key = _key(pending.op)
            if len(batch) >= self.max_batch or key in held or key in self._busy:
                held.add(key)
                rest.append(pending)
            else:
                batch.append(pending)
        self._queue = rest
        return batch

    async def _commit(self, batch: list[_Pending]) -> None:
        persona = batch[0].op.persona  # every op of the batch is in this database
        try:
            if self.store.batch_writes:
                await self.store.write_batch(persona, partial(_apply_sqlite, batch))
            else:
                try:
                    async with self.store.transaction(persona, write=True) as conn:
                        await _apply(conn, batch)
                except _Refused:
                    async with self.store.transaction(persona, write=True) as conn:
                        await _apply_each(conn, batch, savepoints=True)
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
            op = pending.op
            if pending.error is None:
                # Committed: the cache follows, whether or not anyone still waits.
                if isinstance(op, SetOp):
                    self.cache.committed_set(_namespace(op), op.key, op.value)
                else:
                    self.cache.committed_delete(_namespace(op), op.key)
            if pending.done.done():
                continue  # its caller stopped waiting
            if pending.error is not None:
                pending.done.set_exception(pending.error)
            else:
                pending.done.set_result(pending.result)


def _apply_sqlite(batch: list[_Pending], conn: sqlite3.Connection) -> None:
    """`_apply` for the SQLite batch writer, in its thread: a batch of sets
    as one executemany; if SQLite refuses one, each write in turn (SQLite
    undoes only the refused statement), recording each result."""
    if all(isinstance(p.op, SetOp) for p in batch):
        # The last set of a key wins.
        rows = {_key(p.op): _sqlite_row(p.op) for p in batch if isinstance(p.op, SetOp)}
        try:
            settings_sqlite.put_many(conn, rows.values())
            return
        except Exception as exc:
            if is_outage(exc):
                raise
    for pending in batch:
        op = pending.op
        pending.error = None
        try:
            if isinstance(op, SetOp):
                settings_sqlite.put(conn, _sqlite_row(op))
                pending.result = True
            else:
                pending.result = settings_sqlite.delete(conn, op.persona, op.skill, op.key)
        except Exception as exc:
            if is_outage(exc):
                raise
            pending.error = exc


async def _apply(conn: AsyncConnection, batch: list[_Pending]) -> None:
    """Run the batch's writes in `conn`'s transaction (PostgreSQL; SQLite
    batches go through `_apply_sqlite`), recording each result.

    A batch of sets goes in as one statement. A refused statement aborts a
    PostgreSQL transaction, so a refusal (not an outage) raises `_Refused`
    and the batch is redone write by write, each in a savepoint, in a new
    transaction. An outage fails the whole transaction."""
    sets = [p.op for p in batch if isinstance(p.op, SetOp)]
    if len(sets) == len(batch):
        try:
            # The last set of a key wins (one statement may not touch a row twice).
            rows = {_key(op): _row(op) for op in sets}
            await settings.put_many(conn, list(rows.values()))
            return
        except Exception as exc:
            if is_outage(exc):
                raise
            raise _Refused from None
    await _apply_each(conn, batch, savepoints=False)
    if any(p.error is not None for p in batch):
        raise _Refused


async def _apply_each(conn: AsyncConnection, batch: list[_Pending], *, savepoints: bool) -> None:
    """Each write in turn; a refused one records its error. Without
    savepoints the first refusal aborts the transaction, so it stops there."""
    for pending in batch:
        pending.error = None
        try:
            async with _statement(conn, savepoints):
                pending.result = await _one(conn, pending.op)
        except Exception as exc:
            if is_outage(exc):
                raise
            pending.error = exc
            if not savepoints:
                return


async def _one(conn: AsyncConnection, op: Op) -> bool:
    if isinstance(op, SetOp):
        await settings.put(conn, op.persona, op.skill, op.key, op.value, op.now)
        return True
    return await settings.delete(conn, op.persona, op.skill, op.key)


@contextlib.asynccontextmanager
async def _statement(conn: AsyncConnection, savepoint: bool) -> AsyncIterator[None]:
    """A savepoint keeps a refused statement from aborting the whole transaction."""
    if savepoint:
        async with conn.begin_nested():
            yield
    else:
        yield


def _row(op: SetOp) -> dict[str, object]:
    return {"persona": op.persona, "skill": op.skill, "key": op.key, "value": op.value, "updated_at": op.now}


def _sqlite_row(op: SetOp) -> settings_sqlite.Row:
    return (op.persona, op.skill, op.key, op.value, op.now)


def _key(op: Op) -> Key:
    return (op.persona, op.skill, op.key)


def _namespace(op: Op) -> Namespace:
    return (op.persona, op.skill)


def _unavailable(exc: BaseException) -> WireError:
    return WireError(
        ErrorCode.UNAVAILABLE, f"database commit failed, no write of its batch was stored: {describe(exc)}"
    )
