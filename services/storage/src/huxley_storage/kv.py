"""The settings operations the bus adapter calls: gets from the write-through
cache (one database read per namespace, then none), sets and deletes through
the group commit of their database.

The cache is bypassed while the namespace's database is known to be down, so
a get during an outage answers `unavailable` like every other request.
"""

from __future__ import annotations

import asyncio
from typing import Any

from huxley_storage import quota
from huxley_storage.group_commit import DeleteOp, GroupCommit, SetOp
from huxley_storage.repo import settings
from huxley_storage.settings_cache import Namespace, SettingsCache
from huxley_storage.store import Store


class Kv:
    def __init__(
        self, store: Store, limits: quota.Limits | None = None, cache: SettingsCache | None = None
    ) -> None:
        self.store = store
        self.cache = cache if cache is not None else SettingsCache()
        self.ledger = quota.Ledger(limits) if limits is not None else None
        self._commits: dict[str, GroupCommit] = {}
        self._loading: dict[Namespace, asyncio.Task[dict[str, str] | None]] = {}

    def commits(self, persona: str) -> GroupCommit:
        """The write queue of the database holding `persona`."""
        name = self.store.backend.database_name(persona)
        found = self._commits.get(name)
        if found is None:
            parallel = self.store.backend.parallel_writes
            found = self._commits[name] = GroupCommit(self.store, self.cache, parallel=parallel)
        return found

    async def get(self, persona: str, skill: str, key: str) -> str | None:
        namespace = (persona, skill)
        if not self._down(persona) and self.cache.cacheable(namespace):
            found, value = self.cache.lookup(namespace, key)
            if found:
                return value
            rows = await self._load(namespace)
            if rows is not None:
                return rows.get(key)
        async with self.store.transaction(persona) as conn:
            return await settings.get(conn, persona, skill, key)

    async def set(self, persona: str, skill: str, key: str, value: str, now: float) -> None:
        """Refused with `quota_exceeded` past the namespace's quota (if any)."""
        old = await self._within_quota(persona, skill, key, value)
        await self.commits(persona).set(SetOp(persona, skill, key, value, now))
        if self.ledger is not None:
            self.ledger.committed((persona, skill), key, old, value)

    async def delete(self, persona: str, skill: str, key: str) -> bool:
        old = await self.get(persona, skill, key) if self.ledger is not None else None
        deleted = await self.commits(persona).delete(DeleteOp(persona, skill, key))
        if deleted and self.ledger is not None:
            self.ledger.committed((persona, skill), key, old, None)
        return deleted

    def forget_all(self) -> None:
        self.cache.forget_all()
        if self.ledger is not None:
            self.ledger.forget_all()

    async def _within_quota(self, persona: str, skill: str, key: str, value: str) -> str | None:
        """The value `key` holds now, after checking the write fits the quota."""
        if self.ledger is None:
            return None
        namespace = (persona, skill)
        if self.ledger.known(namespace) is None:
            async with self.store.transaction(persona) as conn:
                self.ledger.learn(namespace, await quota.usage(conn, persona, skill))
        old = await self.get(persona, skill, key)
        self.ledger.check(namespace, key, old, value)
        return old

    async def _load(self, namespace: Namespace) -> dict[str, str] | None:
        """The namespace's rows (shared by the gets that miss at once), or
        None if it is too large to cache."""
        task = self._loading.get(namespace)
        if task is None:
            task = asyncio.create_task(self._read(namespace), name="settings-load")
            self._loading[namespace] = task
            task.add_done_callback(lambda _: self._loading.pop(namespace, None))
        return await asyncio.shield(task)

    async def _read(self, namespace: Namespace) -> dict[str, str] | None:
        persona, skill = namespace
        ticket = self.cache.begin_load(namespace)
        async with self.store.transaction(persona) as conn:
            rows = await settings.namespace(conn, persona, skill, self.cache.max_keys + 1)
        if len(rows) > self.cache.max_keys:
            self.cache.too_large(namespace)
            return None
        self.cache.install(ticket, rows)
        return rows

    def _down(self, persona: str) -> bool:
        return self.store.backend.database_name(persona) in self.store.outages

    def detail(self) -> dict[str, Any]:
        commits = [c.stats for c in self._commits.values()]
        return {
            "settings_cache": self.cache.detail(),
            "group_commit": {
                "batches": sum(s.batches for s in commits),
                "writes": sum(s.writes for s in commits),
                "largest": max((s.largest for s in commits), default=0),
                "failed_batches": sum(s.failed_batches for s in commits),
                "most_at_once": max((s.most_at_once for s in commits), default=0),
            },
        }
