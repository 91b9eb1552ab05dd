"""The permission table, enforced by a real nats-server started with the config
`huxley_cli.auth` writes: every identity's own work succeeds, and what the
issue's attacks did is refused by the server itself (Permissions Violation)."""

from __future__ import annotations

import signal
import time

import nats
import pytest
from nats.aio.msg import Msg

from huxley_cli import nats_jwt
from huxley_cli.nats_jwt import Key
from huxley_runtime.bus import settle
from huxley_wire.permissions import Identity, Role, inbox_prefix, service_identity, skill_identity
from huxley_wire.subjects import Subjects, focus_kv_bucket
from security.conftest import Bus, Conn
from support.waiting import until

PERSONA = "basic"


def ids(site: str) -> dict[str, Identity]:
    return {
        "storage": service_identity(Role.STORAGE, site),
        "focus": service_identity(Role.FOCUS, site),
        "bridge": service_identity(Role.BRIDGE, site),
        "audio": service_identity(Role.AUDIO_IO, site),
        "timers": skill_identity(site, PERSONA, ("timers",)),
        "books": skill_identity(site, PERSONA, ("audiobooks",)),
        "observer": Identity(Role.OBSERVER, site, "observer"),
        "admin": Identity(Role.ADMIN, site, "admin"),
    }


async def echo(conn: Conn, subject: str, queue: str = "") -> None:
    async def answer(msg: Msg) -> None:
        await msg.respond(b"ok:" + msg.data)

    await conn.nc.subscribe(subject, queue=queue, cb=answer)
    await settle(conn.nc)  # live on the server before anyone asks


async def test_an_anonymous_connection_is_refused(bus: Bus) -> None:
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(bus.server.url, allow_reconnect=False, max_reconnect_attempts=0)


async def test_creds_signed_by_an_unknown_account_are_refused(bus: Bus, tmp_path) -> None:
    user = Key.new("user")
    jwt = nats_jwt.user_jwt(Key.new("account"), user.public, "intruder", int(time.time()), {})
    creds = tmp_path / "intruder.creds"
    creds.write_text(nats_jwt.creds(jwt, user.seed))
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(bus.server.url, user_credentials=str(creds), allow_reconnect=False)


async def test_each_identity_does_its_own_work(bus: Bus, sec_site: str) -> None:
    s, who = Subjects(sec_site), ids(sec_site)
    c = {name: await bus.connect(identity) for name, identity in who.items()}

    # storage serves a skill's own namespace, and answers health and micro discovery
    await echo(c["storage"], s.storage_kv(PERSONA, "timers"), queue="huxley-storage")
    await echo(c["storage"], s.health("storage"), queue="storage-1")
    await echo(c["storage"], "$SRV.PING")
    reply = await c["timers"].nc.request(s.storage_kv(PERSONA, "timers"), b"get", timeout=5)
    assert reply.data == b"ok:get" and reply.subject.startswith(inbox_prefix("skill-timers", sec_site) + ".")
    assert (await c["observer"].nc.request(s.health("storage"), b"", timeout=5)).data == b"ok:"
    assert (await c["observer"].nc.request("$SRV.PING", b"", timeout=5)).data == b"ok:"

    # the bridge calls a skill's tool; the skill answers (allow_responses)
    await echo(c["timers"], s.skill_tool("timers"), queue="skill.timers")
    assert (await c["bridge"].nc.request(s.skill_tool("timers"), b"call", timeout=5)).data == b"ok:call"

    # a skill asks focus for its own activity and injects; focus notifies it
    await echo(c["focus"], s.focus_rpc_all())
    holder = "skill-timers"
    assert (await c["timers"].nc.request(s.focus_rpc_of(holder), b"inject", timeout=5)).data == b"ok:inject"
    await echo(c["timers"], s.focus_notify(holder))
    assert (await c["focus"].nc.request(s.focus_notify(holder), b"focus", timeout=5)).data == b"ok:focus"

    # audio-io sends mic audio to the bridge and the claim's holder; plays a skill's stream
    mic = await c["bridge"].nc.subscribe(s.audio_mic_assistant())
    claim = await c["timers"].nc.subscribe(s.audio_mic_claim(holder))
    out = await c["audio"].nc.subscribe(s.audio_out_owned_all())
    for conn in (c["bridge"], c["timers"], c["audio"]):
        await settle(conn.nc)
    await c["audio"].nc.publish(s.audio_mic_assistant(), b"frame")
    await c["audio"].nc.publish(s.audio_mic_claim(holder), b"frame")
    await c["timers"].nc.publish(s.audio_out_of(holder, "a-1"), b"frame")
    assert (await mic.next_msg(timeout=5)).data == b"frame"
    assert (await claim.next_msg(timeout=5)).data == b"frame"
    assert (await out.next_msg(timeout=5)).subject == s.audio_out_of(holder, "a-1")

    # the observer reads events; the admin tool exports
    watch = await c["observer"].nc.subscribe(s.everything)
    await settle(c["observer"].nc)
    await c["focus"].nc.publish(s.focus_event("activity"), b"{}")
    assert (await watch.next_msg(timeout=5)).subject == s.focus_event("activity")
    await echo(c["storage"], s.storage_admin())
    assert (await c["admin"].nc.request(s.storage_admin(), b"export", timeout=5)).data == b"ok:export"

    assert all(conn.clean() for conn in c.values()), {n: conn.errors for n, conn in c.items()}


async def test_a_skill_is_refused_everything_that_is_not_its_own(bus: Bus, sec_site: str) -> None:
    s, who = Subjects(sec_site), ids(sec_site)
    timers = await bus.connect(who["timers"])
    nc = timers.nc
    publishes = [
        s.storage_kv(PERSONA, "audiobooks"),  # another skill's keys
        s.storage_schema(PERSONA, "audiobooks"),
        s.storage_kv("other", "timers"),  # its own skill under another persona
        s.storage_sessions(PERSONA),  # the conversations
        s.storage_admin(),  # the whole-home export
        s.audio_mic_assistant(),  # mic audio
        s.audio_mic_claim("skill-timers"),
        s.audio_played(),
        s.focus_notify("bridge"),  # replying as focus
        s.focus_event("activity"),
        s.focus_rpc_of("bridge"),  # focus as another holder
        f"{s.prefix}.focus.rpc",  # the old shared subject that named nobody
        s.skill_tool("audiobooks"),  # calling tools is the bridge's
        s.audio_out_of("bridge", "a-1"),  # another producer's stream
        f"{s.prefix}.audio.out.a-1",  # the old shared stream subject
        s.audio_rpc(),
        s.bridge_inject(),  # an injected turn past focus's scheduler
        s.skill_host_rpc("skill-audiobooks"),  # another host's effects
        s.skill_setup("skill-audiobooks", "audiobooks"),  # another skill's secrets and config
        "$JS.API.STREAM.LIST",
    ]
    for subject in publishes:
        await nc.publish(subject, b"x")
    subscribes = [
        s.skill_tool("audiobooks"),  # answering another skill's tools
        s.audio_mic_assistant(),
        s.audio_mic_claim("skill-audiobooks"),  # someone else's claim
        s.focus_notify("skill-audiobooks"),
        inbox_prefix("realtime-bridge", s.site) + ".>",  # another part's replies
        inbox_prefix("skill-audiobooks", s.site) + ".>",
        "_INBOX.>",
        ">",  # everything, inboxes included
        "*.>",
        s.skill_host_rpc("skill-audiobooks"),  # another host's discards
        s.skill_setup("skill-audiobooks", "audiobooks"),  # set_skill_secret for another skill
        s.skill_setup("skill-timers", "audiobooks"),  # ...even claimed under its own name
        s.storage_kv_all(),
        s.everything,
    ]
    for subject in subscribes:
        await nc.subscribe(subject)
    await nc.flush()
    for subject in publishes:
        await timers.refused("publish", subject)
    for subject in subscribes:
        await timers.refused("subscription", subject)


async def test_core_services_cannot_do_each_others_work(bus: Bus, sec_site: str) -> None:
    s, who = Subjects(sec_site), ids(sec_site)
    c = {name: await bus.connect(who[name]) for name in ("bridge", "audio", "focus", "storage")}
    refusals = {
        "bridge": [
            s.audio_mic_assistant(),
            s.audio_played(),
            s.focus_notify("skill-timers"),
            s.storage_admin(),
        ],
        "audio": [
            s.skill_tool("timers"),
            s.focus_event("activity"),
            s.bridge_event("state"),
            s.bridge_inject(),
        ],
        "focus": [s.audio_mic_assistant(), s.skill_tool("timers"), s.storage_kv(PERSONA, "timers")],
        "storage": [s.focus_event("activity"), s.audio_out_of("bridge", "a-1"), s.bridge_rpc()],
    }
    for name, subjects in refusals.items():
        for subject in subjects:
            await c[name].nc.publish(subject, b"x")
        await c[name].nc.flush()
    for name, subjects in refusals.items():
        for subject in subjects:
            await c[name].refused("publish", subject)


async def test_the_observer_reads_but_cannot_publish_answer_or_hear(bus: Bus, sec_site: str) -> None:
    s, who = Subjects(sec_site), ids(sec_site)
    observer, audio, timers = [await bus.connect(who[n]) for n in ("observer", "audio", "timers")]
    seen: list[Msg] = []

    async def keep(msg: Msg) -> None:
        seen.append(msg)
        if msg.reply:
            await msg.respond(b"forged")  # answering: refused

    await observer.nc.subscribe(s.everything, cb=keep)
    await settle(observer.nc)

    await audio.nc.publish(s.audio_mic_assistant(), b"frame")  # not delivered to the observer
    await audio.nc.publish(s.audio_ptt(), b"{}")  # after the frame, from the same publisher
    await until(lambda: any(m.subject == s.audio_ptt() for m in seen), timeout=5, what="ptt")
    assert not any(m.subject.startswith(s.audio_mic_assistant()) for m in seen)

    with pytest.raises(nats.errors.TimeoutError):  # only the forged answer could come
        await timers.nc.request(s.focus_rpc_of("skill-timers"), b"acquire", timeout=0.5)
    await observer.refused("publish", inbox_prefix("skill-timers", s.site) + ".", prefix=True)  # the reply

    out = s.audio_out_of("bridge", "a-1")
    forbidden = (
        s.focus_rpc_of("bridge"),
        out,
        s.storage_admin(),
        s.client_events(),
        s.focus_notify("bridge"),
        s.bridge_inject(),
    )
    for subject in forbidden:
        await observer.nc.publish(subject, b"x")
    unreadable = (s.audio_mic_assistant(), "_INBOX.>", inbox_prefix("realtime-bridge") + ".>", ">")
    for subject in unreadable:
        await observer.nc.subscribe(subject)
    await settle(observer.nc)
    for subject in forbidden:
        await observer.refused("publish", subject)
    for subject in unreadable:
        await observer.refused("subscription", subject)


async def test_an_observer_allowed_the_mic_hears_it(bus: Bus, sec_site: str) -> None:
    s = Subjects(sec_site)
    listener = await bus.connect(Identity(Role.OBSERVER, sec_site, "observer-mic", hear_mic=True))
    audio = await bus.connect(service_identity(Role.AUDIO_IO, sec_site))
    sub = await listener.nc.subscribe(s.everything)
    await settle(listener.nc)
    await audio.nc.publish(s.audio_mic_assistant(), b"frame")
    assert (await sub.next_msg(timeout=5)).subject == s.audio_mic_assistant()


async def test_an_identity_is_bound_to_its_site(bus: Bus, sec_site: str) -> None:
    other = Subjects(f"{sec_site}x")
    timers = await bus.connect(skill_identity(sec_site, PERSONA, ("timers",)))
    observer = await bus.connect(Identity(Role.OBSERVER, sec_site, "observer"))
    await timers.nc.publish(other.storage_kv(PERSONA, "timers"), b"x")
    await timers.nc.subscribe(other.skill_tool("timers"))
    await observer.nc.subscribe(other.everything)
    await observer.nc.publish(other.health("storage"), b"")
    for conn in (timers, observer):
        await settle(conn.nc)
    await timers.refused("publish", other.storage_kv(PERSONA, "timers"))
    await timers.refused("subscription", other.skill_tool("timers"))
    await observer.refused("subscription", other.everything)
    await observer.refused("publish", other.health("storage"))


async def test_focus_keeps_its_state_in_jetstream_kv(bus: Bus, sec_site: str) -> None:
    focus = await bus.connect(service_identity(Role.FOCUS, sec_site))
    js = focus.nc.jetstream()
    bucket = focus_kv_bucket(sec_site)
    kv = await js.create_key_value(bucket=bucket)
    await kv.put("state", b"1763784003.0")
    assert (await kv.get("state")).value == b"1763784003.0"
    assert (await kv.status()).bucket == bucket
    await js.delete_key_value(bucket)
    assert focus.clean(), focus.errors


async def test_a_rooms_focus_cannot_reach_another_rooms_focus_state(bus: Bus, sec_site: str) -> None:
    """Focus's JetStream rights cover its own site's bucket only (issue 16)."""
    kitchen, bedroom = f"{sec_site}k", f"{sec_site}b"
    theirs = await bus.connect(service_identity(Role.FOCUS, bedroom))
    bucket = focus_kv_bucket(bedroom)
    kv = await theirs.nc.jetstream().create_key_value(bucket=bucket)
    await kv.put("state", b"bedroom")
    mine = await bus.connect(service_identity(Role.FOCUS, kitchen))
    js = mine.nc.jetstream(timeout=0.5)
    with pytest.raises((nats.errors.TimeoutError, nats.js.errors.Error)):
        await (await js.key_value(bucket)).get("state")
    await mine.refused("publish", f"$JS.API.STREAM.INFO.KV_{bucket}")
    await mine.nc.publish(f"$KV.{bucket}.state", b"forged")
    await mine.refused("publish", f"$KV.{bucket}.state")
    assert (await kv.get("state")).value == b"bedroom"
    await theirs.nc.jetstream().delete_key_value(bucket)


async def test_a_rotated_credential_is_refused_after_a_reload(bus: Bus, sec_site: str) -> None:
    identity = skill_identity(sec_site, PERSONA, ("timers",))
    old = bus.store.ensure(identity, int(time.time()))
    old_text = old.read_text()
    stale = old.with_name("stale.creds")
    stale.write_text(old_text)
    bus.store.mint(identity, int(time.time()))  # revokes the old key, rewrites the config
    assert bus.server.process is not None
    bus.server.process.send_signal(signal.SIGHUP)  # nats-server reloads its config

    async def old_refused() -> bool:
        try:
            nc = await nats.connect(bus.server.url, user_credentials=str(stale), allow_reconnect=False)
        except (nats.errors.Error, OSError):  # refused, or cut off while refused
            return True
        await nc.close()
        return False

    await until(old_refused, timeout=10, what="the revoked creds refused")
    fresh = await bus.connect(identity)
    assert fresh.nc.is_connected
