"""Leases on the pure core (FOCUS-14): 3 s for a holder that holds what it has
heard of, a 30 s presence for one that holds nothing, and the fast lease
starting when focus first tells a holder of an activity it did not ask for."""

from __future__ import annotations

from focus.harness import Sim, stream
from huxley_focus.leases import Leases
from huxley_wire.messages.focus import ActivityMeta, Channel, InjectPriority

PRESENCE_S = 30.0


def test_a_holder_holding_nothing_stays_present_between_slow_renews() -> None:
    sim = Sim()
    sim.renew("host")
    sim.advance(25, renew=())
    assert set(sim.core.holders) == {"bridge", "host"}
    assert sim.core.bridge_alive(sim.now)
    sim.advance(5, renew=())
    assert sim.core.holders == {}
    assert not sim.core.bridge_alive(sim.now)


def test_a_holder_that_holds_something_still_goes_after_3_s() -> None:
    sim = Sim()
    book = sim.book()
    assert sim.advance(2.5, renew=()) == []
    assert sim.advance(0.5, renew=()) == [(book, "none", "lease_expired")]
    assert "host" not in sim.core.holders


def test_releasing_the_last_activity_gives_the_presence_lease_back() -> None:
    sim = Sim()
    book = sim.book()
    sim.advance(2, renew=("bridge",))
    sim.release("host", book)
    sim.advance(20, renew=("bridge",))  # no renew from the host meanwhile
    assert "host" in sim.core.holders


def test_an_injected_turn_starts_the_bridges_fast_lease_at_the_grant() -> None:
    sim = Sim()
    sim.advance(20, renew=())  # the bridge renewed 20 s ago: present, not holding
    _, fx = sim.inject("i1", InjectPriority.NORMAL)
    turn = sim.dialog()
    assert ("run", "i1", turn) in fx
    assert sim.advance(2.5, renew=()) == []  # not expired at once for the old renew
    assert sim.state(turn) == "foreground"
    fx = sim.advance(0.5, renew=())
    assert (turn, "none", "lease_expired") in fx


def test_a_pending_effect_its_host_has_not_heard_of_waits_for_the_slow_renew() -> None:
    sim = Sim()
    sim.acquire("sirens", Channel.ALERT, "siren", patience_ms=60_000)
    turn, _ = sim.acquire("bridge", Channel.DIALOG, "user", meta=ActivityMeta(kind="turn"))
    reply, _ = sim.turn_end(turn.activity_id, pending=stream())
    started = reply.effect_activity_id
    assert started is not None and sim.state(started) == "pending"  # under the alert
    sim.advance(10, renew=("bridge", "sirens"))  # the host renews slowly: it holds nothing it knows
    assert sim.state(started) == "pending"
    (alert,) = sim.core.arbiter.stacks[Channel.ALERT]
    assert sim.release("sirens", alert.activity_id)[-1] == (started, "foreground")
    assert sim.advance(2.5, renew=("bridge", "sirens")) == []  # told just now: 3 s from here
    assert sim.advance(0.5, renew=("bridge", "sirens")) == [(started, "none", "lease_expired")]


def test_presence_is_never_shorter_than_the_lease() -> None:
    leases = Leases(lease_s=3.0, presence_s=1.0)
    leases.touch("h", 100.0)
    assert leases.deadline("h", busy=set()) == 103.0
    assert leases.deadline("h", busy={"h"}) == 103.0
    assert leases.deadline("unknown", busy=set()) is None
    assert Sim().core.leases.presence_s == PRESENCE_S
