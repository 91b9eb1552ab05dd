"""Group commit and the settings cache, on SQLite and PostgreSQL.

Writes that arrive together share one transaction; one write the database
refuses fails alone; a commit that fails fails every write of its batch with
`unavailable` and leaves nothing half-seen in the cache; gets after writes,
deletes and imports see exactly what the database holds. The refusals come
from real triggers installed in the test's database.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator

import asyncpg
import pytest
from nats.aio.client import Client

from huxley_runtime.rpc import request
from huxley_runtime.storage_client import SettingsClient
from huxley_storage.service import StorageService
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages import storage as m
from huxley_wire.messages.common import Health, HealthRequest
from huxley_wire.subjects import Subjects
from storage.conftest import PG_HOST, PG_PORT, PG_USER

SKILL = "timers"


async def detail(nc: Client, subjects: Subjects) -> dict[str, object]:
    report: Health = await request(nc, subjects.health("storage"), HealthRequest())
    return report.detail


class Triggers:
    """SQL run on the test's database from outside the service (a real
    trigger is the database refusing a write, not a mock of it)."""

    def __init__(self, service: StorageService, persona: str) -> None:
        self.service = service
        self.persona = persona

    async def run(self, sqlite_sql: str, pg_sql: str) -> None:
        if self.service.store.backend.kind == "sqlite":
            path = self.service.store.backend.path(self.persona)  # type: ignore[attr-defined]
            with sqlite3.connect(path) as db:
                db.executescript(sqlite_sql)
            return
        url = self.service.settings.storage_url or ""
        conn = await asyncpg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, database=url.rsplit("/", 1)[1], timeout=5
        )
        try:
            await conn.execute(pg_sql)
        finally:
            await conn.close()

    async def refuse_key(self, key: str) -> None:
        """Every write of `key` is refused by the database (as a statement)."""
        p = self.persona
        await self.run(
            f"CREATE TRIGGER refuse_{p} BEFORE INSERT ON settings WHEN NEW.key = '{key}' "
            "BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END;",
            f"CREATE FUNCTION refuse_{p}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.persona = '{p}' AND NEW.key = '{key}' THEN RAISE EXCEPTION 'refused by a trigger'; "
            "END IF; RETURN NEW; END $$; "
            f"CREATE TRIGGER refuse_{p} BEFORE INSERT ON settings "
            f"FOR EACH ROW EXECUTE FUNCTION refuse_{p}();",
        )

    async def fail_commit_with_key(self, key: str) -> None:
        """A transaction that wrote `key` cannot commit: a deferred
        constraint, checked at COMMIT, fails."""
        p = self.persona
        await self.run(
            "CREATE TABLE parent (id INTEGER PRIMARY KEY); "
            "CREATE TABLE child (ref INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED); "
            f"CREATE TRIGGER poison_{p} AFTER INSERT ON settings WHEN NEW.key = '{key}' "
            "BEGIN INSERT INTO child VALUES (1); END;",
            f"CREATE FUNCTION poison_{p}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.persona = '{p}' AND NEW.key = '{key}' THEN RAISE EXCEPTION 'refused at commit'; "
            "END IF; RETURN NULL; END $$; "
            f"CREATE CONSTRAINT TRIGGER poison_{p} AFTER INSERT ON settings "
            f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION poison_{p}();",
        )

    async def slow_write(self, key: str, value: str) -> None:
        """PostgreSQL only: writing `value` to `key` takes 0.3 s before the row
        is touched, a window for a later write of the key to overtake it."""
        p = self.persona
        await self.run(
            "",
            f"CREATE FUNCTION slow_{p}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.persona = '{p}' AND NEW.key = '{key}' AND NEW.value = '{value}' THEN "
            "PERFORM pg_sleep(0.3); END IF; RETURN NEW; END $$; "
            f"CREATE TRIGGER slow_{p} BEFORE INSERT ON settings "
            f"FOR EACH ROW EXECUTE FUNCTION slow_{p}();",
        )

    async def drop(self) -> None:
        if self.service.store.backend.kind == "postgresql":
            p = self.persona
            await self.run(
                "",
                f"DROP TRIGGER IF EXISTS refuse_{p} ON settings; DROP FUNCTION IF EXISTS refuse_{p}; "
                f"DROP TRIGGER IF EXISTS poison_{p} ON settings; DROP FUNCTION IF EXISTS poison_{p}; "
                f"DROP TRIGGER IF EXISTS slow_{p} ON settings; DROP FUNCTION IF EXISTS slow_{p};",
            )


@pytest.fixture
async def triggers(storage: StorageService, kv: SettingsClient, persona: str) -> AsyncIterator[Triggers]:
    await kv.set_setting("created", "yes")  # the persona's database exists (and is migrated)
    made = Triggers(storage, persona)
    yield made
    await made.drop()


async def test_concurrent_sets_share_commits_and_are_all_acknowledged(nc, subjects, persona, storage):
    clients = [SettingsClient(nc, subjects, persona, SKILL, deadline_s=0) for _ in range(8)]

    async def writer(n: int) -> None:
        for i in range(25):
            await clients[n].set_setting(f"w{n}:{i:02d}", f"value {n} {i}")

    await asyncio.gather(*(writer(n) for n in range(len(clients))))
    stored = dict(await clients[0].list_settings("w"))
    assert stored == {f"w{n}:{i:02d}": f"value {n} {i}" for n in range(8) for i in range(25)}
    commits = (await detail(nc, subjects))["group_commit"]
    assert isinstance(commits, dict)
    assert commits["writes"] >= 200 and commits["batches"] < commits["writes"], commits
    assert commits["largest"] > 1


async def test_one_refused_write_does_not_fail_its_batch(storage, kv, persona, triggers):
    await triggers.refuse_key("refused")
    keys = [f"k{n}" for n in range(10)]
    keys.insert(5, "refused")
    before = storage.kv.commits(persona).stats.batches
    # Submitted together, so they are one batch.
    results = await asyncio.gather(
        *(storage.kv.set(persona, SKILL, key, f"v-{key}", 1.0) for key in keys), return_exceptions=True
    )
    assert storage.kv.commits(persona).stats.batches == before + 1
    failed = {key for key, result in zip(keys, results, strict=True) if isinstance(result, BaseException)}
    assert failed == {"refused"}
    assert dict(await kv.list_settings("k")) == {f"k{n}": f"v-k{n}" for n in range(10)}
    assert await kv.get_setting("refused") is None


async def test_a_failed_commit_fails_every_write_of_its_batch(storage, kv, persona, triggers):
    await kv.set_setting("k1", "old")
    assert await kv.get_setting("k1") == "old"  # the namespace is cached now
    await triggers.fail_commit_with_key("poison")
    keys = ["k1", "k2", "poison", "k3"]
    results = await asyncio.gather(
        *(storage.kv.set(persona, SKILL, key, "new", 2.0) for key in keys), return_exceptions=True
    )
    for result in results:
        assert isinstance(result, WireError) and result.code == ErrorCode.UNAVAILABLE, result
        assert "database" in result.message
    # Nothing of the batch is seen, neither through the cache nor in the database.
    assert await kv.get_setting("k1") == "old"
    assert await kv.get_setting("k2") is None
    assert dict(await kv.list_settings()) == {"created": "yes", "k1": "old"}
    # The next batch commits.
    await kv.set_setting("k2", "after")
    assert await kv.get_setting("k2") == "after"


async def test_gets_follow_sets_and_deletes(nc, subjects, persona, storage, kv):
    async def delete(key: str) -> bool:
        return (await request(nc, subjects.storage_kv(persona, SKILL), m.KvDelete(key=key))).deleted

    model: dict[str, str] = {}
    for round_ in range(3):
        for n in range(5):
            await kv.set_setting(f"k{n}", f"{round_}-{n}")
            model[f"k{n}"] = f"{round_}-{n}"
            assert await kv.get_setting(f"k{n}") == model[f"k{n}"]
        assert await delete(f"k{round_}") is True
        del model[f"k{round_}"]
        assert await kv.get_setting(f"k{round_}") is None
        assert await delete(f"k{round_}") is False
        assert dict(await kv.list_settings()) == model
    for key, value in model.items():
        assert await kv.get_setting(key) == value
    cache = (await detail(nc, subjects))["settings_cache"]
    assert isinstance(cache, dict) and cache["hits"] > 0


async def test_an_import_is_seen_by_the_next_get(nc, subjects, persona, storage, kv):
    await kv.set_setting("k", "before")
    assert await kv.get_setting("k") == "before"  # cached
    line = {"kind": "settings", "persona": persona, "skill": SKILL, "key": "k", "value": "imported"}
    line["updated_at"] = 3.0
    await request(nc, subjects.storage_admin(), m.AdminImport(lines=[json.dumps(line)], first_line=1))
    assert await kv.get_setting("k") == "imported"


async def test_writes_committed_during_a_load_are_not_hidden(storage, kv, persona):
    """Gets that miss and sets racing them: every get after a set's
    acknowledgement sees that set."""
    await kv.set_setting("k", "0")
    for n in range(1, 30):
        storage.kv.cache.forget([(persona, SKILL)])
        get = asyncio.create_task(storage.kv.get(persona, SKILL, "k"))
        await storage.kv.set(persona, SKILL, "k", str(n), float(n))
        await get
        assert await storage.kv.get(persona, SKILL, "k") == str(n)


async def test_writes_of_one_key_commit_in_arrival_order(storage, kv, persona, backend, triggers):
    """Batches may commit in parallel (PostgreSQL), but a write never
    overtakes an earlier write of its key, even a slow one."""
    if backend == "postgresql":
        await triggers.slow_write("k", "58")
    await kv.set_setting("k", "start")
    writes = []
    for n in range(60):
        writes.append(asyncio.create_task(storage.kv.set(persona, SKILL, "k", str(n), float(n))))
        writes.append(asyncio.create_task(storage.kv.set(persona, SKILL, f"other{n:02d}", str(n), 1.0)))
        await asyncio.sleep(0)  # runners take batches between arrivals
    await asyncio.gather(*writes)
    assert await kv.get_setting("k") == "59"
    storage.kv.cache.forget([(persona, SKILL)])
    assert await kv.get_setting("k") == "59"  # the database's row, not only the cache
    assert len(await kv.list_settings("other")) == 60
    at_once = storage.kv.commits(persona).stats.most_at_once
    if backend == "postgresql":
        assert at_once > 1
    else:
        assert at_once == 1  # one writer per SQLite file


async def test_a_refused_write_in_a_mixed_batch_fails_alone(storage, kv, persona, triggers):
    """Deletes and sets together: on PostgreSQL the batch without savepoints
    is refused as a whole and redone write by write."""
    await kv.set_setting("gone", "x")
    await triggers.refuse_key("refused")
    before = storage.kv.commits(persona).stats.batches
    results = await asyncio.gather(
        storage.kv.set(persona, SKILL, "a", "1", 1.0),
        storage.kv.delete(persona, SKILL, "gone"),
        storage.kv.set(persona, SKILL, "refused", "1", 1.0),
        storage.kv.delete(persona, SKILL, "never"),
        storage.kv.set(persona, SKILL, "b", "2", 1.0),
        return_exceptions=True,
    )
    assert storage.kv.commits(persona).stats.batches == before + 1
    assert results[0] is None and results[1] is True and results[3] is False and results[4] is None
    assert isinstance(results[2], Exception) and not isinstance(results[2], WireError)
    assert dict(await kv.list_settings()) == {"a": "1", "b": "2", "created": "yes"}
