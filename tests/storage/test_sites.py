"""One storage for several rooms (issue 16): each room's skill data and
conversations are its own, a skill the persona shares is the whole home's,
and a room's credentials reach only its own namespaces."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from huxley_runtime.storage_client import SessionsClient, SettingsClient
from huxley_storage.scope import ScopeError, Scopes, room_persona
from huxley_storage.service import StorageService
from huxley_storage.settings import StorageSettings
from huxley_wire.errors import WireError
from huxley_wire.permissions import Role
from huxley_wire.subjects import Subjects
from support.auth import SiteAuth
from support.services import running, wait_healthy


def test_each_room_has_its_own_namespace_and_shared_skills_are_the_homes():
    scopes = Scopes("home", {"basic": frozenset({"shopping"})})
    assert scopes.settings_persona("kitchen", "basic", "timers") == "basic--kitchen"
    assert scopes.settings_persona("bedroom", "basic", "timers") == "basic--bedroom"
    assert scopes.settings_persona("kitchen", "basic", "shopping") == "basic"
    assert scopes.settings_persona("bedroom", "basic", "shopping") == "basic"
    assert scopes.sessions_persona("kitchen", "basic") == "basic--kitchen"
    # Storage's own site (the first room) keeps a one-room home's data where it was.
    assert scopes.settings_persona("home", "basic", "timers") == "basic"
    assert scopes.sessions_persona("home", "basic") == "basic"
    with pytest.raises(ScopeError, match="reserved"):
        room_persona("kitchen", "basic--bedroom")
    with pytest.raises(ScopeError, match="longer than 64"):
        room_persona("k" * 40, "p" * 30)


def write_persona(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(
        f"version: 1\nname: {name}\nsystem_prompt: test\n"
        "skills: {timers: {}, shopping: {}}\nshared_skills: [shopping]\n"
    )
    return path


async def test_one_storage_keeps_each_rooms_data_apart(
    nc, nats_url: str, site: str, persona: str, storage_settings: StorageSettings, tmp_path: Path
):
    kitchen, bedroom = site, f"{site}b"
    personas = tmp_path / "personas"
    write_persona(personas, persona)
    settings = storage_settings.model_copy(
        update={"storage_sites": bedroom, "personas_dir": personas, "storage_personas": persona}
    )
    upstairs = await SiteAuth(bedroom).connect(nats_url, Role.HARNESS)
    try:
        async with running(StorageService, settings) as storage:
            assert (await wait_healthy(upstairs, bedroom, "storage")).status == "ok"
            here, there = Subjects(kitchen), Subjects(bedroom)

            # A timer set in the kitchen is not the bedroom's (nor restored there).
            await SettingsClient(nc, here, persona, "timers", deadline_s=0).set_setting("timer:1", "tea")
            bedroom_timers = SettingsClient(upstairs, there, persona, "timers", deadline_s=0)
            assert await bedroom_timers.get_setting("timer:1") is None
            assert await bedroom_timers.list_settings() == []
            await bedroom_timers.set_setting("timer:1", "alarm")
            kitchen_timers = SettingsClient(nc, here, persona, "timers", deadline_s=0)
            assert await kitchen_timers.get_setting("timer:1") == "tea"

            # The shopping list is the home's: what the kitchen adds, the bedroom reads.
            await SettingsClient(nc, here, persona, "shopping", deadline_s=0).set_setting("milk", "2")
            shared = SettingsClient(upstairs, there, persona, "shopping", deadline_s=0)
            assert await shared.get_setting("milk") == "2"

            # Each room its own conversation.
            talk = SessionsClient(nc, here, persona, deadline_s=0)
            started = await talk.start()
            await talk.record_turn(started.session_id, "user", "Kitchen talk.", "t-1")
            upstairs_talk = SessionsClient(upstairs, there, persona, deadline_s=0)
            assert await upstairs_talk.list() == []
            assert (await upstairs_talk.start()).resumed is False

            # The kitchen is storage's own site: its rows under the plain persona.
            # (PostgreSQL's database is shared with the session's other tests: only ours.)
            ours = [p for p in await storage.store.personas() if p.startswith(persona)]
            assert sorted(ours) == sorted([persona, f"{persona}--{bedroom}"])
    finally:
        await upstairs.drain()


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_storage_for_one_room_does_not_answer_another(
    nats_url: str, site: str, persona: str, storage, tmp_path: Path
):
    elsewhere = f"{site}x"
    other = await SiteAuth(elsewhere).connect(nats_url, Role.HARNESS)
    try:
        kv = SettingsClient(other, Subjects(elsewhere), persona, "timers", deadline_s=0)
        with pytest.raises(WireError):
            await kv.get_setting("timer:1")
    finally:
        await other.drain()


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_several_new_databases_are_made_at_once(nc, subjects: Subjects, persona: str, storage):
    """A new room's first requests come together with the others' (Alembic's
    context is process-wide: two migrations at once mixed up their databases)."""
    names = [f"{persona}{n}" for n in range(4)]
    await asyncio.gather(
        *(SettingsClient(nc, subjects, name, "timers", deadline_s=0).set_setting("k", name) for name in names)
    )
    for name in names:
        assert await SettingsClient(nc, subjects, name, "timers", deadline_s=0).get_setting("k") == name
