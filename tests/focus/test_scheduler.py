"""The inject scheduler, the barrier, the user-PTT interrupt and leases of the
executor, on the pure core; then the scenarios of the seeds."""

from __future__ import annotations

from focus.harness import Sim, claim, notices, stream
from huxley_wire.messages.focus import ActivityKind, Channel, EndReason, InjectPriority

DIALOG, COMMS, CONTENT = Channel.DIALOG, Channel.COMMS, Channel.CONTENT
NORMAL, BLOCK, PREEMPT = InjectPriority.NORMAL, InjectPriority.BLOCK_BEHIND_COMMS, InjectPriority.PREEMPT


# -- inject: fire now or queue ----------------------------------------------------------------
def test_an_idle_inject_fires_on_dialog_held_for_the_bridge() -> None:
    sim = Sim()
    reply, fx = sim.inject("i1", NORMAL, wait=True)
    assert (reply.status, reply.will_notify_done) == ("fired", True)
    turn = sim.dialog()
    # The floor is the turn's before the bridge is told to speak.
    assert fx == [(turn, "foreground"), ("inject", "i1", "fired"), ("run", "i1", turn)]
    activity = sim.core.arbiter.get(turn)
    assert activity is not None and activity.holder == "bridge"
    assert (activity.meta.kind, activity.meta.inject_id) == (ActivityKind.TURN, "i1")


def test_a_fired_inject_pauses_content_with_patience_on_its_clock() -> None:
    sim = Sim()
    book = sim.book(patience_ms=5000)
    _, fx = sim.inject("i1")
    assert (book, "background") in fx
    activity = sim.core.arbiter.get(book)
    assert activity is not None and activity.patience_deadline == sim.now + 5.0
    sim.turn_end(sim.dialog())
    assert sim.state(book) == "foreground"


# -- content without patience under an injected turn (the seeds: "the framework resumes the stream after")
def radio(sim: Sim, *, mixable: bool = False) -> str:
    reply, _ = sim.acquire("host", CONTENT, "radio", mixable=mixable)  # patience 0, like huxley-skill-radio
    return reply.activity_id


def test_an_inject_parks_content_without_patience_and_it_resumes_after_the_turn() -> None:
    sim = Sim()
    live = radio(sim)
    _, fx = sim.inject("timer", BLOCK)
    turn = sim.dialog()
    assert fx[:2] == [(live, "background"), (turn, "foreground")]  # old off before new on
    parked = sim.core.arbiter.get(live)
    assert parked is not None and parked.parked and parked.patience_deadline is None
    assert sim.core.next_deadline() == min(sim.core.holders.values())  # no patience clock runs
    sim.advance(30)  # a long announcement: a park has no deadline
    assert sim.state(live) == "background"
    reply, fx = sim.turn_end(turn)
    assert reply.outcome == "idle"
    assert fx == [("inject", "timer", "done"), (turn, "none", "released"), (live, "foreground")]
    resumed = sim.core.arbiter.get(live)
    assert resumed is not None and not resumed.parked


def test_a_parked_mixable_stream_ducks_under_the_inject() -> None:
    sim = Sim()
    live = radio(sim, mixable=True)
    sim.inject("timer", BLOCK)
    (notice,) = [n for n in notices(sim.effects) if n.activity_id == live and n.state.value == "background"]
    assert (notice.behavior.value, notice.gain) == ("may_duck", 0.3)


def test_every_priority_that_takes_the_floor_from_content_parks_it() -> None:
    for priority in (BLOCK, PREEMPT):
        sim = Sim()
        live = radio(sim)
        assert sim.inject("i1", priority)[0].status == "fired"
        assert sim.state(live) == "background"
        sim.turn_end(sim.dialog())
        assert sim.state(live) == "foreground"
    # NORMAL never takes the floor from content: it waits until the content ends.
    sim = Sim()
    live = radio(sim)
    assert sim.inject("n1", NORMAL)[0].status == "queued"
    assert sim.state(live) == "foreground"


def test_a_park_lasts_through_chained_injects() -> None:
    sim = Sim()
    live = radio(sim)
    sim.inject("t1", BLOCK)
    first = sim.dialog()
    sim.inject("t2", BLOCK)  # queued behind the live turn
    reply, fx = sim.turn_end(first)
    second = sim.dialog()
    assert (reply.outcome, reply.inject_id) == ("fired_inject", "t2")
    assert not [f for f in fx if f[0] == live]  # still parked, nothing to tell it
    _, fx = sim.turn_end(second)
    assert fx[-1] == (live, "foreground")


def test_a_parked_stream_is_displaced_by_the_stream_the_injected_turn_started() -> None:
    sim = Sim()
    live = radio(sim)
    sim.inject("t1", BLOCK)
    turn = sim.dialog()
    reply, fx = sim.turn_end(turn, stream("e9", skill="audiobooks"))
    book = reply.effect_activity_id
    assert reply.outcome == "started_stream"
    # Old off before new on: the turn, then the parked radio, then the book.
    assert fx[-3:] == [(turn, "none", "released"), (live, "none", "displaced"), (book, "foreground")]


def test_a_parked_stream_is_replaced_by_the_same_skills_new_stream() -> None:
    sim = Sim()
    live = radio(sim)
    sim.inject("t1", BLOCK)
    turn = sim.dialog()
    reply, fx = sim.turn_end(turn, stream("e9", skill="radio"))  # "play another station"
    station = reply.effect_activity_id
    assert fx[-3:] == [(turn, "none", "released"), (station, "foreground"), (live, "none", "replaced")]


def test_a_parked_stream_is_displaced_by_the_claim_the_injected_turn_started() -> None:
    sim = Sim()
    live = radio(sim)
    sim.inject("announce", BLOCK)
    turn = sim.dialog()
    reply, fx = sim.turn_end(turn, claim("call"))
    call = reply.effect_activity_id
    assert fx[-3:] == [(turn, "none", "released"), (live, "none", "displaced"), (call, "foreground")]


def test_a_user_ptt_still_stops_parked_content() -> None:
    sim = Sim()
    live = radio(sim)
    sim.inject("t1", BLOCK)
    turn = sim.dialog()
    reply, fx = sim.interrupt()
    assert [f for f in fx if f[0] in (live, turn)] == [(live, "none", "user_ptt"), (turn, "none", "user_ptt")]
    assert reply.stopped == [live, turn]


def test_parked_content_resumes_when_the_bridge_cannot_take_the_turn() -> None:
    sim = Sim()
    live = radio(sim)
    sim.inject("t1", BLOCK)
    turn = sim.dialog()
    fx = sim._keep(sim.core.inject_unavailable("t1", turn, sim.now))
    assert (turn, "none", "error") in fx and (live, "foreground") in fx
    assert sim.queue() == ["t1"]


def test_a_park_survives_a_focus_restart() -> None:
    sim = Sim()
    live = radio(sim)
    sim.inject("t1", BLOCK)
    turn = sim.dialog()
    again = Sim(bridge=False)
    again.core.load(sim.core.dump(), sim.now)
    again.now = sim.now
    restored = again.core.arbiter.get(live)
    assert restored is not None and restored.parked and restored.patience_deadline is None
    _, fx = again.turn_end(turn)
    assert fx[-1] == (live, "foreground")


def test_a_live_turn_queues_every_priority() -> None:
    sim = Sim()
    sim.user_turn()
    for inject_id, priority in (("i1", NORMAL), ("i2", BLOCK), ("i3", PREEMPT)):
        reply, fx = sim.inject(inject_id, priority, wait=True)
        assert (reply.status, reply.will_notify_done) == ("queued", False)
        assert fx == [("inject", inject_id, "queued")]
    assert sim.queue() == ["i1", "i2", "i3"]


def test_a_live_claim_queues_all_but_preempt() -> None:
    sim = Sim()
    call, _ = sim.acquire("host", COMMS, "calls")
    assert sim.inject("i1", NORMAL)[0].status == "queued"
    assert sim.inject("i2", BLOCK)[0].status == "queued"
    reply, fx = sim.inject("i3", PREEMPT)
    assert reply.status == "fired"
    turn = sim.dialog()
    assert fx == [
        (call.activity_id, "none", "preempted"),
        (turn, "foreground"),
        ("inject", "i3", "fired"),
        ("run", "i3", turn),
    ]


def test_normal_waits_while_content_plays_block_behind_comms_does_not() -> None:
    sim = Sim()
    book = sim.book()
    assert sim.inject("n1", NORMAL)[0].status == "queued"
    assert sim.inject("b1", BLOCK)[0].status == "fired"
    assert sim.state(book) == "background"


def test_queued_normal_fires_when_the_content_ends() -> None:
    sim = Sim()
    book = sim.book()
    sim.inject("n1", NORMAL)
    fx = sim.release("host", book)
    assert fx[0] == (book, "none", "released")
    assert ("inject", "n1", "fired") in fx
    assert sim.core.current is not None and sim.core.current.entry.inject_id == "n1"


def test_block_behind_comms_fires_when_the_claim_ends() -> None:
    sim = Sim()
    book = sim.book()
    call, _ = sim.acquire("host", COMMS, "calls")
    sim.inject("b1", BLOCK)
    fx = sim.release("host", call.activity_id)
    turn = sim.dialog()
    # The book never resumes in between: the inject takes the floor in the same change.
    assert [f for f in fx if f[0] in (book, turn, call.activity_id)] == [
        (call.activity_id, "none", "released"),
        (turn, "foreground"),
    ]
    assert sim.state(book) == "background"


def test_dedup_key_replaces_a_queued_entry_last_wins() -> None:
    sim = Sim()
    sim.user_turn()
    sim.inject("i1", dedup_key="timer-7")
    sim.inject("i2", dedup_key="other")
    reply, fx = sim.inject("i3", dedup_key="timer-7")
    assert reply.status == "queued"
    assert fx == [("inject", "i1", "replaced"), ("inject", "i3", "queued")]
    assert sim.queue() == ["i3", "i2"]


def test_dedup_key_equal_to_the_playing_inject_is_dropped() -> None:
    sim = Sim()
    sim.inject("i1", dedup_key="door")
    reply, fx = sim.inject("i2", dedup_key="door")
    assert reply.status == "dropped" and fx == [("inject", "i2", "dropped")]
    assert sim.queue() == []


def test_a_firing_inject_replaces_a_queued_one_with_its_key() -> None:
    sim = Sim()
    book = sim.book()
    sim.inject("n1", NORMAL, dedup_key="k")  # waits behind the book
    reply, fx = sim.inject("b1", BLOCK, dedup_key="k")
    assert reply.status == "fired" and ("inject", "n1", "replaced") in fx
    assert sim.queue() == [] and sim.state(book) == "background"


def test_the_same_inject_id_is_accepted_once() -> None:
    sim = Sim()
    sim.user_turn()
    assert sim.inject("i1")[0].status == "queued"
    reply, fx = sim.inject("i1")
    assert reply.status == "duplicate" and fx == []
    assert sim.queue() == ["i1"]


def test_queued_injects_expire_after_their_ttl() -> None:
    sim = Sim()
    call, _ = sim.acquire("host", COMMS, "calls")
    sim.inject("r1", BLOCK, ttl_s=60)
    sim.inject("r2", BLOCK)
    assert sim.advance(59) == []
    assert sim.advance(1.5) == [("inject", "r1", "expired")]
    sim.release("host", call.activity_id)
    assert sim.core.current is not None and sim.core.current.entry.inject_id == "r2"


def test_without_the_bridge_injects_wait_and_fire_when_it_renews() -> None:
    sim = Sim(bridge=False)
    assert sim.inject("i1")[0].status == "queued"
    _, fx = sim.renew("bridge")
    assert ("inject", "i1", "fired") in fx


# -- the barrier ----------------------------------------------------------------------------------
def test_barrier_preempt_beats_the_turns_stream() -> None:
    sim = Sim()
    turn = sim.user_turn()
    sim.inject("n1", NORMAL)
    sim.inject("p1", PREEMPT)
    reply, fx = sim.turn_end(turn, stream("e1"))
    assert (reply.outcome, reply.inject_id, reply.dropped_effect) == ("fired_inject", "p1", "e1")
    assert ("drop", "e1", "preempted") in fx
    assert sim.queue() == ["n1"]


def test_barrier_preempt_beats_the_turns_claim() -> None:
    sim = Sim()
    turn = sim.user_turn()
    sim.inject("p1", PREEMPT)
    reply, fx = sim.turn_end(turn, claim("c1"))
    assert reply.outcome == "fired_inject" and ("drop", "c1", "preempted") in fx
    assert not sim.core.claim_live()


def test_barrier_block_behind_comms_drops_the_stream() -> None:
    sim = Sim()
    turn = sim.user_turn()
    sim.inject("n1", NORMAL)
    sim.inject("b1", BLOCK)
    reply, fx = sim.turn_end(turn, stream("e1"))
    assert (reply.outcome, reply.inject_id) == ("fired_inject", "b1")
    assert ("drop", "e1", "preempted") in fx
    assert sim.core.arbiter.stacks[CONTENT] == []


def test_barrier_block_behind_comms_does_not_beat_a_claim() -> None:
    sim = Sim()
    turn = sim.user_turn()
    sim.inject("b1", BLOCK)
    reply, fx = sim.turn_end(turn, claim("c1"))
    assert reply.outcome == "started_claim"
    call = reply.effect_activity_id
    assert fx[:2] == [(turn, "none", "released"), (call, "foreground")]
    activity = sim.core.arbiter.get(call)  # type: ignore[arg-type]
    assert activity is not None and (activity.holder, activity.meta.effect_id) == ("host", "c1")
    assert sim.queue() == ["b1"]  # waits for the call
    fx = sim.release("host", call)  # type: ignore[arg-type]
    assert ("inject", "b1", "fired") in fx


def test_barrier_claim_busy_drops_the_claim() -> None:
    sim = Sim()
    turn = sim.user_turn()
    sim.acquire("other", COMMS, "intercom")  # pending under the turn, but it holds the slot
    reply, fx = sim.turn_end(turn, claim("c1"))
    assert (reply.outcome, reply.dropped_effect) == ("idle", "c1")
    assert ("drop", "c1", "claim_busy") in fx


def test_barrier_starts_the_stream_before_the_dialog_goes() -> None:
    sim = Sim()
    old_book = sim.book()
    turn = sim.user_turn()
    sim.inject("n1", NORMAL)
    reply, fx = sim.turn_end(turn, stream("e2", patience_ms=60_000))
    new_book = reply.effect_activity_id
    assert reply.outcome == "started_stream"
    assert fx == [(turn, "none", "released"), (new_book, "foreground"), (old_book, "none", "replaced")]
    assert sim.queue() == ["n1"]  # NORMAL waits for the stream


def test_barrier_a_quiet_turn_end_fires_the_queue_head_even_over_paused_content() -> None:
    sim = Sim()
    book = sim.book()
    turn = sim.user_turn()
    sim.inject("n1", NORMAL)
    sim.inject("b1", BLOCK)
    reply, _ = sim.turn_end(turn)
    assert (reply.outcome, reply.inject_id) == ("fired_inject", "n1")
    assert sim.state(book) == "background"
    reply, _ = sim.turn_end(sim.dialog())
    assert (reply.outcome, reply.inject_id) == ("fired_inject", "b1")
    reply, fx = sim.turn_end(sim.dialog())
    assert reply.outcome == "idle" and (book, "foreground") in fx


def test_the_injected_turns_end_publishes_done() -> None:
    sim = Sim()
    sim.inject("i1", wait=True)
    turn = sim.dialog()
    reply, fx = sim.turn_end(turn)
    assert fx[0] == ("inject", "i1", "done")
    assert reply.outcome == "idle" and sim.core.current is None


def test_turn_end_is_idempotent() -> None:
    sim = Sim()
    turn = sim.user_turn()
    first, _ = sim.turn_end(turn, stream("e1"))
    again, fx = sim.turn_end(turn, stream("e1"))
    assert again == first and fx == []
    assert len(sim.core.arbiter.stacks[CONTENT]) == 1


def test_turn_end_of_an_already_ended_turn_drops_what_it_produced() -> None:
    sim = Sim()
    turn = sim.user_turn()
    sim.interrupt()
    reply, fx = sim.turn_end(turn, claim("c1"))
    assert (reply.outcome, reply.dropped_effect) == ("idle", "c1")
    assert fx == [("drop", "c1", "superseded")]


def test_turn_end_from_someone_else_is_refused() -> None:
    import pytest

    from huxley_wire.errors import ErrorCode, WireError

    sim = Sim()
    turn = sim.user_turn()
    with pytest.raises(WireError) as err:
        sim.turn_end(turn, holder="host")
    assert err.value.code == ErrorCode.NOT_HOLDER


# -- the user-PTT interrupt -----------------------------------------------------------------------
def test_interrupt_stops_content_whatever_its_patience_and_keeps_the_queue() -> None:
    sim = Sim()
    book = sim.book(patience_ms=30 * 60_000)
    sim.inject("n1", NORMAL)  # waiting behind the book
    reply, fx = sim.interrupt()
    assert (reply.ended_claim, reply.stopped) == (False, [book])
    assert fx == [(book, "none", "user_ptt")]
    assert sim.queue() == ["n1"]
    # The queue waits for the user's turn instead of barging in.
    assert sim.advance(0.5) == []
    turn = sim.user_turn()
    reply2, _ = sim.turn_end(turn)
    assert reply2.inject_id == "n1"


def test_interrupt_order_content_then_claim_then_dialog() -> None:
    sim = Sim()
    book = sim.book()
    turn = sim.user_turn()
    call, _ = sim.acquire("host", COMMS, "calls")  # pending under the turn
    reply, fx = sim.interrupt()
    assert fx == [
        (book, "none", "user_ptt"),
        (call.activity_id, "none", "user_ptt"),
        (turn, "none", "user_ptt"),
    ]
    assert reply.ended_claim


def test_interrupt_during_an_injected_turn_finishes_it() -> None:
    sim = Sim()
    sim.inject("i1", wait=True)
    _, fx = sim.interrupt()
    assert ("inject", "i1", "done") in fx and sim.core.current is None


def test_interrupt_that_ends_a_claim_lets_the_queue_run_after_it() -> None:
    sim = Sim()
    sim.acquire("host", COMMS, "calls")
    sim.advance(10)
    sim.inject("b1", BLOCK)
    reply, fx = sim.interrupt()
    assert reply.ended_claim and reply.claim_age_ms == 10_000
    assert not any(f[0] == "inject" for f in fx)  # not inside the interrupt itself
    assert ("inject", "b1", "fired") in sim._keep(sim.core.tick(sim.now))


def test_interrupt_hold_ends_by_itself_if_no_turn_comes() -> None:
    sim = Sim()
    book = sim.book()
    sim.inject("n1", NORMAL)
    sim.interrupt()
    assert sim.state(book) is None
    assert ("inject", "n1", "fired") in sim.advance(2.5)


def test_interrupt_spares_a_claim_younger_than_the_grace() -> None:
    sim = Sim()
    call, _ = sim.acquire("host", COMMS, "calls")
    sim.now += 0.2
    reply, fx = sim.interrupt(claim_grace_ms=300)
    assert (reply.ignored, reply.ended_claim, reply.claim_age_ms, fx) == (True, False, 200, [])
    sim.now += 0.2
    reply, fx = sim.interrupt(claim_grace_ms=300)
    assert (reply.ignored, reply.ended_claim) == (False, True)
    assert fx == [(call.activity_id, "none", "user_ptt")]


# -- the executor's lease --------------------------------------------------------------------------
def test_bridge_dying_before_it_took_the_inject_requeues_it() -> None:
    sim = Sim()
    sim.inject("i1")
    fx = sim.advance(3.5, renew=("host",))
    assert ("inject", "i1", "queued") in fx
    assert sim.queue() == ["i1"] and sim.core.current is None
    _, fx = sim.renew("bridge")
    assert ("inject", "i1", "fired") in fx


def test_bridge_dying_after_it_took_the_inject_finishes_it() -> None:
    sim = Sim()
    sim.inject("i1")
    sim.core.inject_accepted("i1", sim.dialog(), "accepted", sim.now)
    fx = sim.advance(3.5, renew=("host",))
    assert ("inject", "i1", "done") in fx and sim.queue() == []


def test_bridge_saying_already_done_ends_the_turn_for_it() -> None:
    sim = Sim()
    book = sim.book()
    sim.inject("i1")
    turn = sim.dialog()
    fx = sim._keep(sim.core.inject_accepted("i1", turn, "already_done", sim.now))
    assert ("inject", "i1", "done") in fx and (book, "foreground") in fx


# -- the seeds' scenarios ---------------------------------------------------------------------------
def test_seed_book_and_timer() -> None:
    """A book plays, a timer fires (BLOCK_BEHIND_COMMS): the book pauses, the
    model speaks, the book resumes."""
    sim = Sim()
    book = sim.book()
    reply, fx = sim.inject("timer-1", BLOCK, dedup_key="timer_1")
    turn = sim.dialog()
    assert reply.status == "fired"
    assert fx[:2] == [(book, "background"), (turn, "foreground")]
    _, fx = sim.turn_end(turn)
    assert fx == [("inject", "timer-1", "done"), (turn, "none", "released"), (book, "foreground")]


def test_seed_book_and_incoming_call() -> None:
    """The book parks under the call (30 min patience) and resumes after it."""
    sim = Sim()
    book = sim.book()
    sim.inject("announce", BLOCK, wait=True)  # "Llamada de María, contestando"
    announce = sim.dialog()
    reply, fx = sim.turn_end(announce, claim("call-1"))
    call = reply.effect_activity_id
    assert reply.outcome == "started_claim"
    assert fx == [("inject", "announce", "done"), (announce, "none", "released"), (call, "foreground")]
    assert sim.state(book) == "background"
    sim.advance(20 * 60)  # a 20-minute call
    assert sim.state(book) == "background"
    fx = sim.release("host", call)  # type: ignore[arg-type]
    assert fx == [(call, "none", "released"), (book, "foreground")]


def test_seed_ptt_during_a_book() -> None:
    """The one case without patience: the book stops at once."""
    sim = Sim()
    book = sim.book()
    reply, fx = sim.interrupt()
    assert fx == [(book, "none", "user_ptt")] and reply.stopped == [book]
    turn = sim.user_turn()
    reply2, fx = sim.turn_end(turn)
    assert reply2.outcome == "idle" and fx == [(turn, "none", "released")]


def test_seed_preempt_breaks_a_call() -> None:
    sim = Sim()
    book = sim.book()
    call, _ = sim.acquire("host", COMMS, "calls")
    assert sim.inject("med", BLOCK)[0].status == "queued"  # a reminder waits for the call
    reply, fx = sim.inject("fire", PREEMPT)
    turn = sim.dialog()
    assert reply.status == "fired"
    assert (call.activity_id, "none", "preempted") in fx and (turn, "foreground") in fx
    _, fx = sim.turn_end(turn)
    assert ("inject", "med", "fired") in fx  # the claim is gone, the reminder goes next
    _, fx = sim.turn_end(sim.dialog())
    assert (book, "foreground") in fx


def test_seed_normal_waits_behind_content() -> None:
    sim = Sim()
    book = sim.book()
    reply, _ = sim.inject("msgs", NORMAL)
    assert reply.status == "queued" and sim.state(book) == "foreground"
    sim.advance(120)
    assert sim.queue() == ["msgs"]
    fx = sim.release("host", book)  # the chapter ends
    assert ("inject", "msgs", "fired") in fx


def test_events_carry_the_end_reason_to_observers() -> None:
    sim = Sim()
    call, _ = sim.acquire("host", COMMS, "calls")
    sim.inject("fire", PREEMPT)
    ended = [n for n in notices(sim.effects) if n.activity_id == call.activity_id and n.state == "none"]
    assert [n.reason for n in ended] == [EndReason.PREEMPTED]


def test_a_replacement_left_pending_by_a_fired_inject_is_off_before_the_turn_is_on() -> None:
    """Found by the property test: a claim holds an inject back; the PTT ends
    the claim and ALERT takes the floor; a same-identity ALERT acquire then
    lets the inject fire in the same operation, so the replacement is pending
    under DIALOG. The replaced ALERT must hear NONE before DIALOG's
    FOREGROUND ("old off before new on"): it hands over to nobody."""
    sim = Sim()
    sim.acquire("h1", COMMS, "x")
    assert sim.inject("i1")[0].status == "queued"
    sim.acquire("h1", Channel.ALERT, "y")
    sim.interrupt(claim_grace_ms=0)
    alert = sim.core.arbiter.foreground()
    assert alert is not None and alert.channel is Channel.ALERT
    _, fx = sim.acquire("h1", Channel.ALERT, "y")
    turn = sim.dialog()
    assert fx.index((alert.activity_id, "none", "replaced")) < fx.index((turn, "foreground")), fx
