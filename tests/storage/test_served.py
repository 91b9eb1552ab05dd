"""Storage serves only the configured personas, and each skill namespace has
a quota (issue 12 item 3)."""

from __future__ import annotations

import asyncio
import json
import secrets

import pytest
from nats.aio.client import Client

from huxley_runtime.storage_client import SettingsClient
from huxley_storage.service import StorageService
from huxley_storage.settings import StorageSettings
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.subjects import Subjects
from support.services import running


async def refused_code(nc: Client, subject: str, payload: dict) -> str | None:
    reply = json.loads((await nc.request(subject, json.dumps(payload).encode(), timeout=10)).data)
    return reply.get("error", {}).get("code")


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_made_up_personas_get_not_found_and_no_database(
    nc, subjects: Subjects, storage, storage_settings
):
    made_up = [f"x{secrets.token_hex(6)}" for _ in range(3000)]
    codes: list[str | None] = []
    for start in range(0, len(made_up), 200):  # 200 in flight at a time
        batch = made_up[start : start + 200]
        codes += await asyncio.gather(
            *(
                refused_code(
                    nc, subjects.storage_kv(p, "timers"), {"v": 1, "op": "set", "key": "k", "value": "v"}
                )
                for p in batch
            )
        )
    assert codes == ["not_found"] * len(made_up)
    # Sessions too: a made-up persona cannot start a conversation record.
    session = await refused_code(nc, subjects.storage_sessions(made_up[0]), {"v": 1, "op": "start"})
    assert session == "not_found"
    folder = storage_settings.data_dir / "storage"
    assert not folder.exists() or list(folder.iterdir()) == []
    assert await storage.store.personas() == []


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_the_quota_refuses_the_next_key_and_a_delete_frees_room(
    nc, subjects: Subjects, persona: str, storage_settings: StorageSettings
):
    settings = storage_settings.model_copy(update={"storage_quota_keys": 3, "storage_quota_bytes": 64})
    async with running(StorageService, settings):
        kv = SettingsClient(nc, subjects, persona, "timers", deadline_s=0)
        for key in ("a", "b", "c"):
            await kv.set_setting(key, "1")
        with pytest.raises(WireError) as err:
            await kv.set_setting("d", "1")
        assert err.value.code == ErrorCode.QUOTA_EXCEEDED and "3 keys" in err.value.message
        await kv.set_setting("a", "2")  # replacing a key takes no new room
        # Another skill's namespace has its own quota.
        await SettingsClient(nc, subjects, persona, "audiobooks", deadline_s=0).set_setting("d", "1")
        await kv.delete_setting("c")
        await kv.set_setting("d", "1")
        assert sorted(k for k, _ in await kv.list_settings()) == ["a", "b", "d"]
        # Bytes: keys and values count, 3 + 3 bytes used of 64.
        with pytest.raises(WireError) as err:
            await kv.set_setting("b", "x" * 62)
        assert err.value.code == ErrorCode.QUOTA_EXCEEDED and "64" in err.value.message
        await kv.set_setting("b", "x" * 59)  # exactly at the limit: 1+1 + 1+59 + 1+1 = 64
        assert await kv.get_setting("b") == "x" * 59
