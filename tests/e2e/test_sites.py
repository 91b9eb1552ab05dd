"""Two rooms on one bus (issue 16): the kitchen and the bedroom each run their
own focus, skill-host, bridge and audio-io; one storage serves both. What
happens in one room stays there: a timer set in the kitchen fires (an inject)
in the kitchen only and is not restored by the bedroom's skill-host, a press
in the kitchen does not cut the bedroom's book."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from nats.aio.client import Client

from e2e.conftest import SKILLS, TOOLS, Book, stack_env
from e2e.speaker import BOOK, Timeline, speech
from e2e.stack import PERSONA, BusLog, Stack, copy_book
from huxley_realtime_sim import SimServer
from huxley_runtime.storage_client import SettingsClient
from huxley_wire.permissions import Role
from huxley_wire.subjects import Subjects
from support.auth import SiteAuth
from support.services import ServiceProcess

pytestmark = pytest.mark.slow

ACK = "Here's your book."
HELLO = "Hello there."
TIMER_SET = "Timer set."
TEA = "Tea is ready."
KITCHEN_SAID = (HELLO, TIMER_SET, TEA)


@dataclass
class Home:
    kitchen: Stack
    bedroom: Stack
    storage: ServiceProcess


async def room(
    site: str, root: Path, base_env: dict[str, str], sim: SimServer, book: Book, nc: Client
) -> Stack:
    env = stack_env(base_env, root, sim, SiteAuth(site))
    stack = Stack(nc, site, root, sim, env, await BusLog().start(nc, Subjects(site)))
    stack.services = {k: v for k, v in Stack.services.items() if k != "storage"}  # the home's, shared
    copy_book(book.path, stack.data_dir)
    return stack


@pytest.fixture
async def home(
    nc: Client, nats_url: str, site: str, base_env: dict[str, str], tmp_path: Path, sim: SimServer, book: Book
) -> AsyncIterator[Home]:
    bedroom_site = f"{site}b"
    upstairs = await SiteAuth(bedroom_site).connect(nats_url, Role.HARNESS)
    kitchen = await room(site, tmp_path / "kitchen", base_env, sim, book, nc)
    bedroom = await room(bedroom_site, tmp_path / "bedroom", base_env, sim, book, upstairs)
    # One storage for the home: the kitchen's site is its own, the bedroom one more.
    storage_env = {**kitchen.env, "HUXLEY_STORAGE_SITES": bedroom_site}
    storage = ServiceProcess("huxley_storage", storage_env, tmp_path / "logs" / "storage.log").start()
    for stack in (kitchen, bedroom):
        stack.procs["storage"] = storage  # first: stopped last
        stack.start()
    try:
        for stack in (kitchen, bedroom):
            await stack.wait_ready(tools=TOOLS, skills=SKILLS)
        yield Home(kitchen, bedroom, storage)
    finally:
        await bedroom.stop()
        await kitchen.stop()
        await upstairs.drain()


def references() -> dict[str, bytes]:
    return {phrase: speech(phrase) for phrase in (ACK, *KITCHEN_SAID)}


async def test_two_rooms_on_one_bus_keep_to_themselves(home: Home, book: Book) -> None:
    kitchen, bedroom = home.kitchen, home.bedroom

    # A timer set in the kitchen is kept in the kitchen's namespace only.
    mark = kitchen.log.mark
    await kitchen.press("4")
    await kitchen.turn_ended(after=mark)
    kitchen_timers = SettingsClient(kitchen.nc, kitchen.subjects, PERSONA, "timers")
    bedroom_timers = SettingsClient(bedroom.nc, bedroom.subjects, PERSONA, "timers")
    assert await kitchen_timers.list_settings("timer:"), "the kitchen's timer is stored"
    assert await bedroom_timers.list_settings("timer:") == []

    # The bedroom's skill-host starting again restores nothing of the kitchen's.
    old = bedroom.procs["skill-host"]
    assert await old.terminate() == 0
    bedroom.procs["skill-host"] = ServiceProcess(
        "huxley_skill_host", bedroom.env, bedroom.root / "logs" / "skill-host-2.log"
    ).start()
    await bedroom.wait_ready(tools=TOOLS, skills=SKILLS)

    # The bedroom plays its book; a press in the kitchen does not cut it.
    upstairs = bedroom.log.mark
    await bedroom.press("3")
    started = await bedroom.log.wait(
        "focus.event.activity",
        lambda a: a["channel"] == "content" and a["state"] == "foreground",
        after=upstairs,
    )
    stream = started["activity_id"]
    await bedroom.played_at_least(stream, 1000, after=upstairs)
    downstairs = kitchen.log.mark
    await kitchen.press("0")
    await kitchen.turn_ended(after=downstairs)
    await bedroom.played_at_least(stream, bedroom.played_ms(stream) + 1000)

    # The timer fires where it was set: an inject turn in the kitchen.
    fired = await kitchen.log.wait("focus.event.inject", lambda i: i["status"] == "fired", after=mark)
    assert fired["skill"] == "timers"
    await kitchen.turn_ended(after=mark, kind="injected")
    await bedroom.played_at_least(stream, bedroom.played_ms(stream) + 500)

    # Nothing of the kitchen's reached the bedroom's bus, focus or book.
    assert not bedroom.log.matching("focus.event.inject", lambda i: True, after=0)
    assert not bedroom.log.matching("bridge.event.turn", lambda t: t["kind"] == "injected")
    assert not bedroom.log.matching(
        "focus.event.activity", lambda a: a["activity_id"] == stream and a["state"] != "foreground"
    )
    assert not kitchen.log.matching("focus.event.activity", lambda a: a["channel"] == "content")

    heard_upstairs = Timeline(await bedroom.speaker(), references(), book.pcm)
    assert heard_upstairs.order() == [ACK, BOOK], heard_upstairs.describe()
    heard_downstairs = Timeline(await kitchen.speaker(), references(), book.pcm)
    for phrase in KITCHEN_SAID:
        assert heard_downstairs.heard_ms(phrase) >= len(speech(phrase)) // 48 - 100, (
            heard_downstairs.describe()
        )
    assert not heard_downstairs.of(BOOK) and not heard_downstairs.of(ACK), heard_downstairs.describe()
