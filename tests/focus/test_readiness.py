"""The bridge's readiness on the pure core: injects fire only while the bridge
renews AND says its model is reachable; a `run_inject` answered `unavailable`
puts the inject back, unspoken, to fire once the bridge is ready again; a TTL
that passes meanwhile tells the owner (`expired`)."""

from __future__ import annotations

from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg

from focus.harness import Sim, stream
from huxley_focus.core import FocusCore
from huxley_focus.service import FocusService
from huxley_runtime.bus import settle
from huxley_wire.messages.focus import Channel, EndReason, InjectEvent, InjectPriority
from huxley_wire.subjects import Subjects
from support.focus_peers import BridgePeer, Recorder
from support.services import running, wait_healthy

NORMAL, BLOCK = InjectPriority.NORMAL, InjectPriority.BLOCK_BEHIND_COMMS


def runs(fx: list[tuple[object, ...]]) -> list[str]:
    return [str(e[1]) for e in fx if e[0] == "run"]


def test_an_unready_bridge_queues_injects_and_ready_fires_them_once() -> None:
    sim = Sim()
    sim.bridge_says(False)
    reply, fx = sim.inject("i1", BLOCK)
    assert reply.status == "queued" and runs(fx) == []
    fx = sim.advance(5.0)  # the bridge keeps renewing, not ready: its lease lives, nothing fires
    assert runs(fx) == [] and sim.queue() == ["i1"] and sim.core.bridge_alive(sim.now)
    fx = sim.bridge_says(True)
    assert runs(fx) == ["i1"] and sim.queue() == []
    assert runs(sim.bridge_says(True)) == []  # fired once


def test_a_renew_that_states_nothing_counts_as_ready() -> None:
    sim = Sim()
    sim.bridge_says(False)
    sim.inject("i1", BLOCK)
    sim.bridge_ready = None  # a bridge that predates Renew.ready
    assert runs(sim.renew("bridge")[1]) == ["i1"]


def test_the_barrier_does_not_fire_for_an_unready_bridge() -> None:
    sim = Sim()
    turn = sim.user_turn()
    sim.inject("i1", InjectPriority.PREEMPT)
    sim.bridge_says(False)
    reply, fx = sim.turn_end(turn, stream("e1"))
    assert reply.outcome == "started_stream" and runs(fx) == []  # the stream is not held back
    assert sim.queue() == ["i1"]


def test_unavailable_gives_dialog_back_and_requeues_the_same_inject_at_the_head() -> None:
    sim = Sim()
    book = sim.book()
    sim.inject("i2", BLOCK)  # fires
    first_turn = sim.dialog()
    sim.core.hold_until = None
    sim.inject("i3", BLOCK)  # queued behind the live turn
    fx = sim._keep(sim.core.inject_unavailable("i2", first_turn, sim.now))
    assert fx == [
        (first_turn, "none", "error"),
        (book, "foreground"),  # the book plays on while the model is away
        ("inject", "i2", "queued"),
    ]
    assert sim.queue() == ["i2", "i3"] and sim.core.current is None and not sim.core.bridge_ready
    assert runs(sim.advance(1.0, renew=("host",))) == []  # no word from the bridge yet
    fx = sim.bridge_says(True)
    assert runs(fx) == ["i2"] and sim.dialog() != first_turn
    assert [e for e in fx if e[0] == "inject"] == [("inject", "i2", "fired")]


def test_unavailable_after_the_bridge_accepted_changes_nothing() -> None:
    sim = Sim()
    sim.inject("i1")
    turn = sim.dialog()
    sim.core.inject_accepted("i1", turn, "accepted", sim.now)
    assert sim.core.inject_unavailable("i1", turn, sim.now) == []
    assert sim.dialog() == turn and sim.core.bridge_ready


def test_a_late_unavailable_for_another_turn_changes_nothing() -> None:
    sim = Sim()
    sim.inject("i1")
    assert sim.core.inject_unavailable("i1", "a-stale", sim.now) == []
    assert sim.core.inject_unavailable("i0", sim.dialog(), sim.now) == []


def test_a_requeued_inject_whose_ttl_passes_expires_and_says_so() -> None:
    sim = Sim()
    sim.inject("i1", BLOCK, ttl_s=10)
    sim.core.inject_unavailable("i1", sim.dialog(), sim.now)
    sim.bridge_ready = False  # the bridge's renews say so from now on
    fx = sim.advance(9.5)
    assert ("inject", "i1", "expired") not in fx
    fx = sim.advance(1.0)
    assert ("inject", "i1", "expired") in fx and sim.queue() == []
    assert runs(sim.bridge_says(True)) == []


def test_readiness_and_the_requeued_inject_survive_a_restart() -> None:
    sim = Sim()
    sim.inject("i1", BLOCK, ttl_s=60)
    sim.core.inject_unavailable("i1", sim.dialog(), sim.now)
    saved = sim.core.dump()
    again = FocusCore()
    fx = again.load(saved, sim.now + 1)
    assert [e.inject_id for e in again.queue] == ["i1"] and not again.bridge_ready
    assert again.queue.entries[0].expires_at == sim.core.queue.entries[0].expires_at
    assert not any(type(e).__name__ == "RunInject" for e in fx)
    _, fx = again.renew("bridge", sim.now + 1.5, True)
    assert [e.inject_id for e in fx if type(e).__name__ == "RunInject"] == ["i1"]


# -- over a real nats-server, with a scripted bridge ---------------------------------------------
async def inject_events(nc: Client, site: str) -> Recorder:
    log = Recorder()

    async def on(msg: Msg) -> None:
        log.add(InjectEvent.model_validate_json(msg.data))

    await nc.subscribe(Subjects(site).focus_event("inject"), cb=on)
    await settle(nc)
    return log


def steps(log: Recorder, inject_id: str) -> list[str]:
    return [e.status for e in log.items if e.inject_id == inject_id]


async def test_bus_an_unready_bridge_gets_no_inject_until_it_is_ready(
    nc: Client, site: str, focus: FocusService
) -> None:
    injects = await inject_events(nc, site)
    peer = await BridgePeer(nc, site, ready=False).start()
    try:
        reply = await peer.client.inject("tea is ready", priority=BLOCK, wait=True)
        assert reply.status == "queued"
        health = await wait_healthy(nc, site, "focus")
        assert health.detail["bridge"].startswith("not ready") and health.detail["queue"] == 1
        assert peer.run_injects.items == []
        await peer.client.set_ready(True)  # renews at once
        run = await peer.next_inject(reply.inject_id)
        await peer.finish(run)
        await injects.wait_for(lambda e: e.inject_id == reply.inject_id and e.status == "done")
        assert steps(injects, reply.inject_id) == ["queued", "fired", "done"]
        assert len(peer.run_injects.items) == 1
    finally:
        await peer.stop()


async def test_bus_run_inject_unavailable_requeues_and_fires_once_when_ready(
    nc: Client, site: str, holders: Any
) -> None:
    injects = await inject_events(nc, site)
    book = await holders("host")
    playing = await book.client.acquire(Channel.CONTENT, "audiobooks", patience_ms=60_000)
    peer = await BridgePeer(nc, site, ready=True).start()
    try:
        peer.unavailable = True
        reply = await peer.client.inject("tea is ready", priority=BLOCK, wait=True)
        assert reply.status == "fired"
        refused = await peer.refused.wait_for(lambda r: r.inject_id == reply.inject_id)
        await injects.wait_for(lambda e: e.inject_id == reply.inject_id and e.status == "queued")
        # Its DIALOG was given back: the bridge hears NONE, the book plays on.
        lost = await peer.handler.wait_state(refused.activity_id, "none")
        assert lost.reason == EndReason.ERROR
        await book.handler.wait_state(playing.activity_id, "foreground")
        snapshot = await peer.client.snapshot()
        assert [q.inject_id for q in snapshot.queue] == [reply.inject_id]
        assert peer.run_injects.items == []  # nothing accepted

        peer.unavailable = False
        await peer.client.set_ready(True)
        run = await peer.next_inject(reply.inject_id)
        assert run.activity_id != refused.activity_id  # a new turn, the same inject
        await peer.finish(run)
        await injects.wait_for(lambda e: e.inject_id == reply.inject_id and e.status == "done")
        assert steps(injects, reply.inject_id) == ["fired", "queued", "fired", "done"]
        assert [r.inject_id for r in peer.run_injects.items] == [reply.inject_id]  # spoken once
        await book.handler.wait_state(playing.activity_id, "foreground")
    finally:
        await peer.stop()


async def test_bus_an_inject_whose_ttl_passes_while_the_bridge_is_unready_expires(
    nc: Client, site: str, focus: FocusService
) -> None:
    injects = await inject_events(nc, site)
    peer = await BridgePeer(nc, site, ready=False).start()
    try:
        reply = await peer.client.inject("the pasta", priority=BLOCK, ttl_s=0.5)
        assert reply.status == "queued"
        await injects.wait_for(lambda e: e.inject_id == reply.inject_id and e.status == "expired")
        await peer.client.set_ready(True)
        assert (await peer.client.snapshot()).queue == []
        assert peer.run_injects.items == [] and peer.refused.items == []
    finally:
        await peer.stop()


async def test_bus_a_requeued_inject_survives_a_restart_of_focus(
    nc: Client, site: str, focus_settings: Any
) -> None:
    injects = await inject_events(nc, site)
    async with running(FocusService, focus_settings):
        peer = await BridgePeer(nc, site, ready=True).start()
        peer.unavailable = True
        reply = await peer.client.inject("tea is ready", priority=BLOCK)
        await injects.wait_for(lambda e: e.inject_id == reply.inject_id and e.status == "queued")
    async with running(FocusService, focus_settings):
        assert [q.inject_id for q in (await peer.client.snapshot()).queue] == [reply.inject_id]
        peer.unavailable = False
        await peer.client.set_ready(True)
        run = await peer.next_inject(reply.inject_id)
        await peer.finish(run)
        await injects.wait_for(lambda e: e.inject_id == reply.inject_id and e.status == "done")
        assert [r.inject_id for r in peer.run_injects.items] == [reply.inject_id]
        await peer.stop()
