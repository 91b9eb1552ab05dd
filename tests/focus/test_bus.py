"""The focus service over a real nats-server (in this process): the focus.rpc
operations, notifications and their acks, events, leases, bad requests, the
client's reconciliation and the follower."""

from __future__ import annotations

import asyncio
import json
import subprocess
from typing import Any

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from huxley_cli.auth import AuthStore
from huxley_cli.natsserver import find_nats_server, free_port, wait_for_port
from huxley_focus.service import FocusService
from huxley_focus.settings import FocusSettings
from huxley_runtime.bus import settle
from huxley_runtime.focus_client import FocusClient, FocusFollower
from huxley_runtime.focus_client.tasks import encode_error
from huxley_runtime.rpc import request
from huxley_wire.codec import Ok, encode
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages import focus as m
from huxley_wire.messages.focus import (
    ActivityEvent,
    ActivityMeta,
    Channel,
    ContentType,
    EndReason,
    InjectEvent,
    InjectPriority,
)
from huxley_wire.subjects import Subjects
from support.auth import SiteAuth
from support.focus_peers import BridgePeer, Recorder, RecordingHandler
from support.services import running, wait_healthy
from support.waiting import until

BOOK_PATIENCE = 30 * 60 * 1000


async def events(nc: Client, site: str, kind: str, model: Any) -> Recorder:
    log = Recorder()

    async def on(msg: Msg) -> None:
        log.add(model.model_validate_json(msg.data))

    await nc.subscribe(Subjects(site).focus_event(kind), cb=on)
    await settle(nc)
    return log


async def test_acquire_notifies_the_holder_and_replies_after(holders: Any) -> None:
    book = await holders("host")
    reply = await book.client.acquire(Channel.CONTENT, "audiobooks", patience_ms=BOOK_PATIENCE)
    assert reply.state == "foreground"
    # The notification was acked before the reply came, so it is already recorded.
    assert book.handler.changes(reply.activity_id) == [("foreground", None)]
    assert book.client.state_of(reply.activity_id) == "foreground"


async def test_user_turn_pauses_the_book_and_its_end_resumes_it(holders: Any, bridge: BridgePeer) -> None:
    book = await holders("host")
    playing = await book.client.acquire(Channel.CONTENT, "audiobooks", patience_ms=BOOK_PATIENCE)
    turn = await bridge.client.acquire(Channel.DIALOG, "user", meta=ActivityMeta(kind="turn"))
    assert book.handler.changes(playing.activity_id) == [("foreground", None), ("background", None)]
    ended = await bridge.client.turn_end(turn.activity_id)
    assert ended.outcome == "idle"
    assert book.handler.changes(playing.activity_id)[-1] == ("foreground", None)
    assert bridge.handler.changes(turn.activity_id) == [("foreground", None), ("none", "released")]


async def test_every_transition_is_an_event_in_sequence(nc: Client, site: str, holders: Any) -> None:
    log = await events(nc, site, "activity", ActivityEvent)
    book = await holders("host")
    mixable = await book.client.acquire(
        Channel.CONTENT, "radio", content_type=ContentType.MIXABLE, patience_ms=300_000
    )
    siren = await book.client.acquire(Channel.ALERT, "siren")
    await book.client.release(siren.activity_id)
    await log.wait_for(lambda e: e.activity_id == mixable.activity_id and e.seq == 5)
    got = [(e.seq, e.activity_id, e.state.value, e.gain) for e in log.items]
    assert got == [
        (1, mixable.activity_id, "foreground", 1.0),
        (2, mixable.activity_id, "background", 0.3),  # ducked, still heard
        (3, siren.activity_id, "foreground", 1.0),
        (4, siren.activity_id, "none", 0.0),
        (5, mixable.activity_id, "foreground", 1.0),
    ]
    assert all(e.ramp_ms == 100 and e.holder == "host" for e in log.items)


async def test_inject_runs_on_the_bridge_and_reports_its_lifecycle(
    nc: Client, site: str, holders: Any, bridge: BridgePeer
) -> None:
    injects = await events(nc, site, "inject", InjectEvent)
    book = await holders("host")
    playing = await book.client.acquire(Channel.CONTENT, "audiobooks", patience_ms=BOOK_PATIENCE)
    reply = await book.client.inject(
        "Tell the user: tea is ready", priority=InjectPriority.BLOCK_BEHIND_COMMS, wait=True, skill="timers"
    )
    assert (reply.status, reply.will_notify_done) == ("fired", True)
    run = await bridge.next_inject(reply.inject_id)
    assert run.prompt == "Tell the user: tea is ready"
    granted = await bridge.handler.wait_state(run.activity_id, "foreground")
    assert (granted.meta.kind, granted.meta.inject_id) == ("turn", reply.inject_id)
    assert book.handler.changes(playing.activity_id)[-1] == ("background", None)
    await bridge.finish(run)
    await injects.wait_for(lambda e: e.inject_id == reply.inject_id and e.status == "done")
    assert [e.status for e in injects.items if e.inject_id == reply.inject_id] == ["fired", "done"]
    await book.handler.wait_state(playing.activity_id, "foreground")


async def test_queued_inject_fires_when_the_bridge_appears(nc: Client, site: str, holders: Any) -> None:
    someone = await holders("host")
    reply = await someone.client.inject("hello", priority=InjectPriority.NORMAL)
    assert reply.status == "queued"  # no bridge holds a lease
    peer = await BridgePeer(nc, site).start()
    try:
        run = await peer.next_inject(reply.inject_id)
        assert run.priority == InjectPriority.NORMAL
    finally:
        await peer.stop()


async def test_run_inject_is_retried_until_the_bridge_answers(
    nc: Client, site: str, focus: FocusService
) -> None:
    injects = await events(nc, site, "inject", InjectEvent)
    peer = await BridgePeer(nc, site, answer=False).start()
    try:
        reply = await peer.client.inject("urgent", priority=InjectPriority.PREEMPT)
        assert reply.status == "fired"
        first = await peer.next_inject()
        peer.answer = True
        await peer.run_injects.wait_for(lambda r: r is not first)
        assert {(r.inject_id, r.activity_id) for r in peer.run_injects.items} == {
            (first.inject_id, first.activity_id)  # the same turn every time
        }
        await peer.finish(first)
        await injects.wait_for(lambda e: e.status == "done")
    finally:
        await peer.stop()


async def test_interrupt_replies_only_after_the_holders_acked(
    nc: Client, site: str, focus: FocusService
) -> None:
    """A holder that acks slowly: the interrupt's reply still comes after its ack."""
    subjects = Subjects(site)
    order: list[str] = []

    async def slow_holder(msg: Msg) -> None:
        note = json.loads(msg.data)
        if note["op"] == "focus" and note["state"] == "none":
            await asyncio.sleep(0.3)
            order.append("holder acked none")
        await msg.respond(encode(Ok()))

    await nc.subscribe(subjects.focus_notify("slow"), cb=slow_holder)
    await settle(nc)
    acquire = m.Acquire(holder="slow", channel=Channel.CONTENT, interface="radio", patience_ms=60_000)
    playing = await request(nc, subjects.focus_rpc_of("slow"), acquire)
    claim = m.Acquire(holder="slow", channel=Channel.COMMS, interface="calls")
    call = await request(nc, subjects.focus_rpc_of("slow"), claim)
    reply = await request(nc, subjects.focus_rpc_of("bridge"), m.Interrupt(), timeout=5)
    order.append("interrupt replied")
    assert reply.ended_claim and set(reply.stopped) == {playing.activity_id, call.activity_id}
    assert order == ["holder acked none", "holder acked none", "interrupt replied"]


async def test_patience_hook_runs_before_the_none_and_may_schedule_an_inject(
    nc: Client, site: str, focus_settings: Any, bridge: BridgePeer
) -> None:
    holder_log: list[str] = []
    handler = RecordingHandler()
    client = FocusClient(nc, Subjects(site), "host", handler)

    async def narrate(activity_id: str) -> None:
        holder_log.append("hook")
        # The reference's rule: schedule the inject, never await it in the hook.
        asyncio.get_running_loop().create_task(
            client.inject("Lo dejé donde íbamos", priority=InjectPriority.BLOCK_BEHIND_COMMS)
        )

    handler.on_patience = narrate
    await client.start()
    try:
        playing = await client.acquire(Channel.CONTENT, "audiobooks", patience_ms=300)
        call = await client.acquire(Channel.COMMS, "calls")
        await handler.wait_state(playing.activity_id, "none")
        kinds = [
            i[0] for i in handler.log.items if i[0] != "focus" or i[1].activity_id == playing.activity_id
        ]
        assert kinds == ["focus", "focus", "patience", "patience_done", "focus"]
        assert handler.changes(playing.activity_id)[-1] == ("none", "patience_expired")
        assert holder_log == ["hook"]
        await client.release(call.activity_id)
        run = await bridge.next_inject()
        assert run.prompt == "Lo dejé donde íbamos"
    finally:
        await client.stop()


async def test_comms_single_claim_gets_claim_busy(holders: Any) -> None:
    one = await holders("host-1")
    two = await holders("host-2")
    await one.client.acquire(Channel.COMMS, "calls")
    with pytest.raises(WireError) as err:
        await two.client.acquire(Channel.COMMS, "intercom")
    assert err.value.code == ErrorCode.CLAIM_BUSY


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"{not json", "bad_json"),
        (b'{"v":1,"op":"acquire","holder":"h","channel":"radio","interface":"x"}', "invalid"),
        (b'{"v":1,"op":"acquire","holder":"h","channel":"content"}', "invalid"),
        (b'{"v":1,"op":"acquire","holder":"h","channel":"content","interface":"x","extra":1}', "invalid"),
        (
            b'{"v":1,"op":"acquire","holder":"h","channel":"content","interface":"x","patience_ms":-5}',
            "invalid",
        ),
        (b'{"v":1,"op":"release","holder":"h","activity_id":"a-nope"}', "not_holder"),
        (b'{"v":1,"op":"acquire","holder":"a.b.>","channel":"content","interface":"x"}', "invalid"),
        (b'{"v":1,"op":"renew","holder":""}', "invalid"),
        (b'{"v":1,"op":"inject","inject_id":"i","prompt":"","priority":"normal"}', "invalid"),
        (b'{"v":1,"op":"inject","inject_id":"i","prompt":"x","priority":"urgent"}', "invalid"),
        (
            b'{"v":1,"op":"turn_end","holder":"bridge","activity_id":"a-x","pending":{"kind":"tune"}}',
            "invalid",
        ),
        (b'{"v":1,"op":"explode"}', "unknown_op"),
        (b'{"v":2,"op":"snapshot"}', "bad_version"),
        (b"[1,2]", "bad_json"),
    ],
)
async def test_bad_requests_get_the_error_envelope(
    nc: Client, site: str, focus: FocusService, payload: bytes, code: str
) -> None:
    reply = json.loads((await nc.request(Subjects(site).focus_rpc_of("harness"), payload, timeout=5)).data)
    assert reply["error"]["code"] == code, reply
    snapshot = await request(nc, Subjects(site).focus_rpc_of("harness"), m.SnapshotRequest())
    assert snapshot.queue == []  # and focus goes on


async def test_releasing_someone_elses_activity_is_refused(holders: Any) -> None:
    owner = await holders("owner")
    thief = await holders("thief")
    held = await owner.client.acquire(Channel.CONTENT, "radio")
    with pytest.raises(WireError) as err:
        await thief.client.release(held.activity_id)
    assert err.value.code == ErrorCode.NOT_HOLDER
    assert owner.client.state_of(held.activity_id) == "foreground"


async def test_a_holder_that_stops_renewing_loses_its_activities(
    nc: Client, site: str, holders: Any, focus: FocusService
) -> None:
    log = await events(nc, site, "activity", ActivityEvent)
    book = await holders("host")
    playing = await book.client.acquire(Channel.CONTENT, "audiobooks", patience_ms=BOOK_PATIENCE)
    dying = await holders("dying")
    alert = await dying.client.acquire(Channel.ALERT, "siren")
    assert dying.client._lease is not None
    dying.client._lease.cancel()  # it goes silent (as if frozen)
    ended = await log.wait_for(lambda e: e.activity_id == alert.activity_id and e.state == "none")
    assert ended.reason == EndReason.LEASE_EXPIRED
    await book.handler.wait_state(playing.activity_id, "foreground")
    assert "dying" not in focus.core.holders


async def test_client_synthesizes_none_for_what_focus_dropped_unheard(
    nc: Client, site: str, holders: Any
) -> None:
    book = await holders("host")
    held = await book.client.acquire(Channel.CONTENT, "radio")
    await book.client._sub.unsubscribe()  # it will not hear the NONE
    await settle(nc)
    release = m.Release(holder="host", activity_id=held.activity_id)
    await request(nc, Subjects(site).focus_rpc_of("host"), release, timeout=5)
    lost = await book.handler.wait_state(held.activity_id, "none")
    assert (lost.reason, lost.seq) == (EndReason.LEASE_EXPIRED, 0)
    assert book.client.state_of(held.activity_id) is None


async def test_client_releases_what_focus_lists_but_it_does_not_know(
    nc: Client, site: str, focus: FocusService
) -> None:
    subjects = Subjects(site)
    stale = m.Acquire(holder="host-fixed", channel=Channel.CONTENT, interface="radio")
    old = await request(nc, subjects.focus_rpc_of("host-fixed"), stale)  # a previous incarnation's
    log = await events(nc, site, "activity", ActivityEvent)
    client = FocusClient(nc, subjects, "host-fixed", RecordingHandler())
    await client.start()
    try:
        ended = await log.wait_for(lambda e: e.activity_id == old.activity_id and e.state == "none")
        assert ended.reason == EndReason.RELEASED
    finally:
        await client.stop()


async def test_a_pending_activity_survives_lease_renewals_and_is_promoted_later(
    holders: Any, bridge: BridgePeer
) -> None:
    book = await holders("host")
    turn = await bridge.client.acquire(Channel.DIALOG, "user", meta=ActivityMeta(kind="turn"))
    waiting = await book.client.acquire(Channel.CONTENT, "audiobooks", patience_ms=BOOK_PATIENCE)
    assert waiting.state == "pending"
    for _ in range(2):  # focus does not list it as announced; it must not count as lost
        await book.client._renew()
    assert book.client.state_of(waiting.activity_id) == "pending"
    assert book.handler.changes(waiting.activity_id) == []
    await bridge.client.turn_end(turn.activity_id)
    await book.handler.wait_state(waiting.activity_id, "foreground")


async def test_follower_tracks_states_gains_and_resyncs(nc: Client, site: str, holders: Any) -> None:
    book = await holders("host")
    radio = await book.client.acquire(
        Channel.CONTENT, "radio", content_type=ContentType.MIXABLE, patience_ms=300_000
    )
    seen = Recorder()
    follower = FocusFollower(
        nc, Subjects(site), holder="audio-io", on_change=lambda s: seen.add((s.activity_id, s.state))
    )
    await follower.start()
    try:
        assert follower.gain(radio.activity_id) == 1.0  # from the snapshot
        siren = await book.client.acquire(Channel.ALERT, "siren")
        await seen.wait_for(lambda i: i == (siren.activity_id, "foreground"))
        assert follower.gain(radio.activity_id) == pytest.approx(0.3)
        assert follower.foreground is not None and follower.foreground.activity_id == siren.activity_id
        assert follower.gain("a-unknown") == 0.0
        # Miss events (as in a reconnect): the gap is noticed and a snapshot fixes it.
        await follower._sub.unsubscribe()
        await book.client.release(siren.activity_id)
        follower._sub = await nc.subscribe(Subjects(site).focus_event("activity"), cb=follower._on_event)
        await settle(nc)
        again = await book.client.acquire(Channel.ALERT, "siren")
        await seen.wait_for(lambda i: i == (siren.activity_id, "none"))  # from the resync
        await seen.wait_for(lambda i: i == (again.activity_id, "foreground"))
        assert follower.state(siren.activity_id) is None
    finally:
        await follower.stop()


async def test_follower_silences_a_replaced_stream_with_its_successor(
    nc: Client, site: str, holders: Any
) -> None:
    book = await holders("host")
    old = await book.client.acquire(Channel.CONTENT, "audiobooks")
    seen = Recorder()
    follower = FocusFollower(
        nc,
        Subjects(site),
        holder="audio-io",
        on_change=lambda s: seen.add((s.activity_id, s.state, s.reason)),
    )
    await follower.start()
    try:
        new = await book.client.acquire(Channel.CONTENT, "audiobooks")
        await seen.wait_for(lambda i: i[0] == new.activity_id)
        start = next(n for n, i in enumerate(seen.items) if i[0] == new.activity_id)
        order = seen.items[start:]
        # At the moment the successor is heard, the old one is already silent.
        assert order[:2] == [
            (new.activity_id, "foreground", None),
            (old.activity_id, "none", EndReason.REPLACED),
        ]
        assert follower.gain(old.activity_id) == 0.0 and follower.gain(new.activity_id) == 1.0
        assert book.handler.changes(old.activity_id)[-1] == ("none", "replaced")
    finally:
        await follower.stop()


async def test_state_survives_a_restart_of_focus(nc: Client, site: str, focus_settings: Any) -> None:
    subjects = Subjects(site)
    async with running(FocusService, focus_settings):
        handler = RecordingHandler()
        client = FocusClient(nc, subjects, "host", handler)
        await client.start()
        playing = await client.acquire(Channel.CONTENT, "audiobooks", patience_ms=BOOK_PATIENCE)
        turn = await client.acquire(Channel.DIALOG, "user")
        queued = await client.inject("later", inject_id="i-keep", priority=InjectPriority.BLOCK_BEHIND_COMMS)
        assert queued.status == "queued"
        before = await client.snapshot()
    async with running(FocusService, focus_settings):
        after = await client.snapshot()
        assert after.channels == before.channels and after.queue == before.queue
        assert after.seq >= before.seq
        again = await client.inject("later", inject_id="i-keep")
        assert again.status == "duplicate"
        await client.release(turn.activity_id)
        await handler.wait_state(playing.activity_id, "foreground")
        await client.stop()


async def test_without_jetstream_focus_serves_from_memory_and_says_degraded(
    tmp_path: Any, auth_store: AuthStore
) -> None:
    """A bus without JetStream: focus still arbitrates, and its health says why it is degraded."""
    port = free_port()
    # The session's authenticated config, without -js: the server has no JetStream.
    server = subprocess.Popen(
        [str(find_nats_server()), "-a", "127.0.0.1", "-p", str(port), "-c", str(auth_store.config_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port)
        url = f"nats://127.0.0.1:{port}"
        settings = FocusSettings(nats_url=url, site="nojs", data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
        client_nc = await SiteAuth("nojs").connect(url)
        try:
            async with running(FocusService, settings):
                health = await wait_healthy(client_nc, "nojs", "focus")
                assert health.status == "degraded"
                assert "JetStream" in health.detail["problem"] and health.detail["persisted"] is False
                handler = RecordingHandler()
                client = FocusClient(client_nc, Subjects("nojs"), "host", handler)
                await client.start()
                reply = await client.acquire(Channel.CONTENT, "radio")
                assert reply.state == "foreground"
                await client.stop()
        finally:
            await client_nc.close()
    finally:
        server.terminate()
        server.wait()


async def test_health_is_ok_with_its_store_even_without_a_bridge(
    nc: Client, site: str, focus: FocusService
) -> None:
    health = await wait_healthy(nc, site, "focus")
    assert health.status == "ok" and health.detail["persisted"] is True
    assert health.detail["bridge"].startswith("absent")


async def test_client_stop_releases_and_the_handler_hears_it(
    nc: Client, site: str, focus: FocusService
) -> None:
    handler = RecordingHandler()
    client = FocusClient(nc, Subjects(site), "host", handler)
    await client.start()
    held = await client.acquire(Channel.CONTENT, "radio")
    await client.stop()
    assert handler.changes(held.activity_id) == [("foreground", None), ("none", "released")]
    assert focus.core.arbiter.get(held.activity_id) is None


async def test_the_subject_names_who_acts(nc: Client, site: str, focus: FocusService) -> None:
    """A body holder other than the subject's, and control ops from a skill, are refused."""
    s = Subjects(site)
    as_other = m.Acquire(holder="skill-radio", channel=Channel.ALERT, interface="siren")
    for subject, req in (
        (s.focus_rpc_of("skill-timers"), as_other),
        (s.focus_rpc_of("skill-timers"), m.StopAll()),
        (s.focus_rpc_of("skill-timers"), m.Interrupt()),
        (s.focus_rpc_of("skill-timers"), m.TurnEnd(holder="skill-timers", activity_id="a-1")),
    ):
        with pytest.raises(WireError) as err:
            await request(nc, subject, req)
        assert err.value.code == ErrorCode.NOT_HOLDER
    assert (await request(nc, s.focus_rpc_of("skill-timers"), m.SnapshotRequest())).channels is not None
    await request(nc, s.focus_rpc_of("bridge"), m.StopAll())  # the bridge may
    assert list(focus.core.arbiter.activities()) == []


async def test_follower_applies_events_that_came_during_a_failed_resync(nc: Client, site: str) -> None:
    """Focus is down (a stand-in refuses the snapshot) while an event arrives:
    the event counts at once, not only after focus answers again."""
    subjects = Subjects(site)
    seen = Recorder()
    follower = FocusFollower(
        nc, subjects, holder="audio-io", on_change=lambda s: seen.add((s.activity_id, s.state))
    )
    event = ActivityEvent(
        seq=1,
        ts=0.0,
        activity_id="turn-7",
        channel=Channel.DIALOG,
        interface="bridge",
        holder="bridge",
        content_type=ContentType.NONMIXABLE,
        state="foreground",
        behavior="primary",
        gain=1.0,
        ramp_ms=100,
        meta=ActivityMeta(kind="turn"),
    )

    async def refuse_after_an_event(msg: Msg) -> None:
        await nc.publish(subjects.focus_event("activity"), encode(event))
        await until(lambda: follower._buffer, what="the event held back while resyncing")
        await msg.respond(encode_error(WireError(ErrorCode.UNAVAILABLE, "focus is starting")))

    stand_in = await nc.subscribe(subjects.focus_rpc_of("audio-io"), cb=refuse_after_an_event)
    await settle(nc)
    try:
        await follower.start()  # its first resync fails; the event came meanwhile
        assert not follower.synced.is_set()
        assert seen.items == [("turn-7", "foreground")]
        assert follower.gain("turn-7") == 1.0 and follower.seq == 1
    finally:
        await stand_in.unsubscribe()
        await follower.stop()
