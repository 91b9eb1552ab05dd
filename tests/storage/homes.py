"""A small home's worth of storage data, and a snapshot of it to compare."""

from __future__ import annotations

import json
from typing import Any

from nats.aio.client import Client

from huxley_runtime.storage_client import SchemaClient, SessionsClient, SettingsClient
from huxley_wire.subjects import Subjects


async def fill_home(nc: Client, subjects: Subjects, persona: str) -> None:
    timers = SettingsClient(nc, subjects, persona, "timers", deadline_s=0)
    books = SettingsClient(nc, subjects, persona, "audiobooks", deadline_s=0)
    await timers.set_setting("timer:1", json.dumps({"fire_at": "2026-11-22T10:00:00", "message": "tea"}))
    await timers.set_setting("ñandú 🦤", '\x01 escaped \\ "quoted"')
    await books.set_setting("position:moby", "1234.5")
    await SchemaClient(nc, subjects, persona, "timers", deadline_s=0).set_version(2)
    sessions = SessionsClient(nc, subjects, persona, deadline_s=0)
    session = (await sessions.start()).session_id
    await sessions.record_turn(session, "user", "set a timer for tea", turn_id="t-1")
    await sessions.record_turn(
        session, "assistant", "Five minutes, starting now.", turn_id="t-1", record_id="r-five"
    )
    await sessions.end(session, summary="a tea timer")


async def snapshot(nc: Client, subjects: Subjects, persona: str) -> dict[str, Any]:
    sessions = SessionsClient(nc, subjects, persona, deadline_s=0)
    return {
        "timers": await SettingsClient(nc, subjects, persona, "timers", deadline_s=0).list_settings(),
        "books": await SettingsClient(nc, subjects, persona, "audiobooks", deadline_s=0).list_settings(),
        "schema": await SchemaClient(nc, subjects, persona, "timers", deadline_s=0).get_version(),
        "sessions": [(await sessions.get(s.session_id)).model_dump() for s in await sessions.list()],
        "summary": await sessions.latest_summary(),
    }
