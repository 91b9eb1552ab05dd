"""The bridge's readiness on the pure core: injects fire only while the bridge
renews AND says its model is reachable; a `run_inject` answered `unavailable`
puts the inject back, unspoken, to fire once the bridge is ready again; a TTL
that passes meanwhile tells the owner (`expired`)."""

from __future__ import annotations

from focus.harness import Sim, stream
from huxley_focus.core import FocusCore
from huxley_wire.messages.focus import InjectPriority

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
