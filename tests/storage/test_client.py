"""The typed storage clients: SkillStorage's exact surface, retries while
storage is unavailable, and a clear error when the deadline passes."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from huxley_runtime.storage_client import SessionsClient, SettingsClient, StorageUnavailable
from huxley_storage.service import StorageService
from huxley_wire.errors import ErrorCode, WireError
from support.services import running

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])


def test_settings_client_has_the_skill_storage_surface():
    expected = {
        "get_setting": "(key: 'str', default: 'str | None' = None) -> 'str | None'",
        "set_setting": "(key: 'str', value: 'str') -> 'None'",
        "list_settings": "(prefix: 'str' = '') -> 'list[tuple[str, str]]'",
        "delete_setting": "(key: 'str') -> 'None'",
    }
    for name, signature in expected.items():
        method = getattr(SettingsClient, name)
        assert inspect.iscoroutinefunction(method)
        params = list(inspect.signature(method).parameters.values())[1:]  # without self
        assert (
            str(inspect.Signature(params, return_annotation=inspect.signature(method).return_annotation))
            == signature
        )


@sqlite_only
async def test_a_write_waits_for_storage_to_come_up(nc, subjects, persona, storage_settings):
    kv = SettingsClient(nc, subjects, persona, "timers", deadline_s=60)
    pending = asyncio.create_task(kv.set_setting("early", "bird"))
    done, _ = await asyncio.wait({pending}, timeout=0.5)
    assert not done  # nobody answers yet: the client keeps trying instead of failing
    async with running(StorageService, storage_settings):
        await asyncio.wait_for(pending, 60)
        assert await kv.get_setting("early") == "bird"


async def test_the_deadline_ends_retrying_with_a_clear_error(nc, subjects, persona):
    kv = SettingsClient(nc, subjects, persona, "timers", deadline_s=0.3, timeout_s=0.2)
    with pytest.raises(StorageUnavailable) as err:
        await kv.set_setting("k", "v")
    assert err.value.code == ErrorCode.UNAVAILABLE
    assert "'set'" in err.value.message and subjects.storage_kv(persona, "timers") in err.value.message


@sqlite_only
async def test_refusals_are_not_retried(nc, subjects, persona, storage):
    kv = SettingsClient(nc, subjects, persona, "timers", deadline_s=60)
    with pytest.raises(WireError) as err:
        await asyncio.wait_for(kv.set_setting("k" * 600, "v"), 10)
    assert err.value.code == ErrorCode.TOO_LARGE and not isinstance(err.value, StorageUnavailable)


@sqlite_only
async def test_a_transcript_line_waits_for_storage_and_is_stored_once(
    nc, subjects, persona, storage_settings
):
    sessions = SessionsClient(nc, subjects, persona, deadline_s=60)
    async with running(StorageService, storage_settings):
        session = (await sessions.start()).session_id
    pending = asyncio.create_task(sessions.record_turn(session, "user", "said while storage restarts"))
    done, _ = await asyncio.wait({pending}, timeout=0.5)
    assert not done  # nobody received it: sending it again cannot append it twice
    async with running(StorageService, storage_settings):
        await asyncio.wait_for(pending, 60)
        turns = (await sessions.get(session)).turns
    assert [t.text for t in turns] == ["said while storage restarts"]


async def test_a_transcript_line_that_timed_out_is_not_sent_again(nc, subjects, persona):
    received: list[bytes] = []

    async def silent(msg) -> None:  # takes the request and never answers, like a storage stuck mid-write
        received.append(msg.data)

    sub = await nc.subscribe(subjects.storage_sessions(persona), cb=silent)
    await nc.flush()
    sessions = SessionsClient(nc, subjects, persona, deadline_s=5, timeout_s=0.2)
    with pytest.raises(WireError) as err:
        await sessions.record_turn(1, "user", "maybe stored")
    await sub.unsubscribe()
    assert err.value.code == ErrorCode.TIMEOUT and len(received) == 1
