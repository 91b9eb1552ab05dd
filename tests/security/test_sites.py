"""Rooms on one bus (issue 16): a room's credentials cannot touch another
room's mic, speaker, focus, replies or skill data; the home's storage and
observer, minted for several rooms, serve and read each of them."""

from __future__ import annotations

from dataclasses import replace

import pytest
from nats.aio.msg import Msg

from huxley_runtime.bus import settle
from huxley_wire.permissions import Identity, Role, inbox_prefix, service_identity, skill_identity
from huxley_wire.subjects import Subjects
from security.conftest import Bus
from support.waiting import until

PERSONA = "basic"


def test_only_the_homes_storage_observer_and_admin_cover_several_rooms():
    assert Identity(Role.OBSERVER, "kitchen", "observer", also_sites=("bedroom",)).sites == (
        "kitchen",
        "bedroom",
    )
    for role in (Role.FOCUS, Role.BRIDGE, Role.AUDIO_IO, Role.SATELLITE, Role.HARNESS):
        with pytest.raises(ValueError, match="one site"):
            Identity(role, "kitchen", str(role), also_sites=("bedroom",))
    # The same name in two rooms reads two inboxes, neither within the other.
    kitchen, bedroom = inbox_prefix("focus", "kitchen"), inbox_prefix("focus", "bedroom")
    assert kitchen == "_INBOX_focus@kitchen" and not bedroom.startswith(kitchen)
    assert inbox_prefix("focus") == "_INBOX_focus"  # a one-room home's prefixes are unchanged


async def test_a_rooms_credentials_cannot_touch_another_room(bus: Bus, sec_site: str) -> None:
    kitchen, bedroom = f"{sec_site}k", f"{sec_site}b"
    theirs = Subjects(bedroom)
    audio = await bus.connect(service_identity(Role.AUDIO_IO, kitchen))
    bridge = await bus.connect(service_identity(Role.BRIDGE, kitchen))
    timers = await bus.connect(skill_identity(kitchen, PERSONA, ("timers",)))
    watcher = await bus.connect(Identity(Role.OBSERVER, bedroom, "observer", hear_mic=True))
    seen: list[Msg] = []

    async def keep(msg: Msg) -> None:
        seen.append(msg)

    await watcher.nc.subscribe(theirs.everything, cb=keep)
    await settle(watcher.nc)

    # The bedroom's speaker, mic, PTT and focus, from the kitchen's parts.
    forged = [
        (audio, theirs.audio_out_of("audio-io", "s-1")),
        (bridge, theirs.audio_out_of("bridge", "s-1")),
        (timers, theirs.audio_out_of("skill-timers", "s-1")),
        (audio, theirs.audio_mic_assistant()),
        (audio, theirs.audio_ptt()),
        (bridge, theirs.focus_rpc_of("bridge")),
        (audio, theirs.focus_rpc_of("audio-io")),
        (timers, theirs.focus_rpc_of("skill-timers")),
        (bridge, theirs.audio_rpc()),
        (timers, theirs.storage_kv(PERSONA, "timers")),
    ]
    for conn, subject in forged:
        await conn.nc.publish(subject, b"x")
    for conn, subject in forged:
        await conn.refused("publish", subject)

    # Hearing the bedroom, or reading the bedroom bridge's replies (the same
    # identity name in another room: before issue 16 one `_INBOX_<name>.>`).
    listens = [
        (bridge, theirs.audio_mic_assistant()),
        (timers, theirs.audio_mic_claim("skill-timers")),
        (audio, theirs.audio_out_owned_all()),
        (bridge, inbox_prefix("realtime-bridge", bedroom) + ".>"),
        (audio, inbox_prefix("audio-io", bedroom) + ".>"),
    ]
    for conn, subject in listens:
        await conn.nc.subscribe(subject)
    for conn, subject in listens:
        await conn.refused("subscription", subject)

    # And none of it reached the bedroom's bus.
    await watcher.nc.flush()
    assert not seen, [m.subject for m in seen]


async def test_the_homes_storage_and_observer_serve_every_room(bus: Bus, sec_site: str) -> None:
    kitchen, bedroom = f"{sec_site}k", f"{sec_site}b"
    storage = await bus.connect(replace(service_identity(Role.STORAGE, kitchen), also_sites=(bedroom,)))
    observer = await bus.connect(Identity(Role.OBSERVER, kitchen, "observer", also_sites=(bedroom,)))

    async def answer(msg: Msg) -> None:
        await msg.respond(b"ok:" + msg.subject.encode())

    for site in (kitchen, bedroom):
        await storage.nc.subscribe(Subjects(site).storage_kv_all(), cb=answer)
        await storage.nc.subscribe(Subjects(site).health("storage"), cb=answer)
    await settle(storage.nc)
    for site in (kitchen, bedroom):
        skill = await bus.connect(skill_identity(site, PERSONA, ("timers",)))
        subject = Subjects(site).storage_kv(PERSONA, "timers")
        assert (await skill.nc.request(subject, b"get", timeout=5)).data == b"ok:" + subject.encode()
        health = Subjects(site).health("storage")
        assert (await observer.nc.request(health, b"", timeout=5)).data == b"ok:" + health.encode()
    # Still no further than its rooms.
    elsewhere = Subjects(f"{sec_site}x")
    await storage.nc.subscribe(elsewhere.storage_kv_all())
    await until(lambda: not storage.clean(), timeout=5, what="the storage refused elsewhere")
    assert storage.clean() is False and observer.clean()


async def test_a_rooms_replies_are_not_read_in_another_room(bus: Bus, sec_site: str) -> None:
    kitchen, bedroom = f"{sec_site}k", f"{sec_site}b"
    spy = await bus.connect(service_identity(Role.BRIDGE, kitchen))
    asker = await bus.connect(service_identity(Role.BRIDGE, bedroom))
    speaker = await bus.connect(service_identity(Role.AUDIO_IO, bedroom))
    overheard: list[Msg] = []

    async def keep(msg: Msg) -> None:
        overheard.append(msg)

    # Everything the kitchen's bridge may read as replies.
    await spy.nc.subscribe(spy.identity.inbox_prefix + ".>", cb=keep)
    await settle(spy.nc)

    async def answer(msg: Msg) -> None:
        await msg.respond(b"snapshot: the bedroom's volume")

    await speaker.nc.subscribe(Subjects(bedroom).audio_rpc(), cb=answer)
    await settle(speaker.nc)
    reply = await asker.nc.request(Subjects(bedroom).audio_rpc(), b"snapshot", timeout=5)
    assert reply.data == b"snapshot: the bedroom's volume"
    await spy.nc.flush()
    assert not overheard and spy.clean()
