"""Every rule of REFERENCE.md section 2, on the pure core (no bus, no clock)."""

from __future__ import annotations

import pytest

from focus.harness import Sim, notices
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages.focus import Behavior, Channel, EndReason

DIALOG, COMMS, ALERT, CONTENT = Channel.DIALOG, Channel.COMMS, Channel.ALERT, Channel.CONTENT


def test_first_acquire_is_foreground_and_its_holder_is_told() -> None:
    sim = Sim()
    reply, fx = sim.acquire("host", CONTENT, "radio")
    assert reply.state == "foreground"
    assert fx == [(reply.activity_id, "foreground")]
    (event,) = notices(sim.effects)
    assert (event.behavior, event.gain, event.ramp_ms, event.holder) == (Behavior.PRIMARY, 1.0, 100, "host")


def test_displaced_with_patience_goes_background_old_off_before_new_on() -> None:
    sim = Sim()
    book = sim.book(patience_ms=5000)
    reply, fx = sim.acquire("bridge", DIALOG, "user")
    assert fx == [(book, "background"), (reply.activity_id, "foreground")]
    event = notices(sim.effects)[-2]
    assert (event.behavior, event.gain) == (Behavior.MUST_PAUSE, 0.0)
    assert sim.core.arbiter.get(book).patience_deadline == pytest.approx(sim.now + 5)  # type: ignore[union-attr]


def test_mixable_background_ducks_to_the_configured_gain() -> None:
    sim = Sim(duck_gain=0.25, ramp_ms=80)
    music, _ = sim.acquire("host", CONTENT, "radio", patience_ms=300_000, mixable=True)
    sim.acquire("bridge", DIALOG, "user")
    event = next(
        e for e in notices(sim.effects) if e.activity_id == music.activity_id and e.state == "background"
    )
    assert (event.behavior, event.gain, event.ramp_ms) == (Behavior.MAY_DUCK, 0.25, 80)
    assert sim.core.content_playing()  # ducked content is still heard


def test_displaced_without_patience_is_removed_with_none() -> None:
    sim = Sim()
    radio, _ = sim.acquire("host", CONTENT, "radio")
    turn, fx = sim.acquire("bridge", DIALOG, "user")
    assert fx == [(radio.activity_id, "none", "displaced"), (turn.activity_id, "foreground")]
    assert sim.state(radio.activity_id) is None


def test_patience_belongs_to_the_displaced_not_the_newcomer() -> None:
    sim = Sim()
    radio, _ = sim.acquire("host", CONTENT, "radio")  # no patience
    _, fx = sim.acquire("bridge", DIALOG, "user", patience_ms=60_000)  # the newcomer's patience is irrelevant
    assert fx[0] == (radio.activity_id, "none", "displaced")


def test_acquired_under_a_higher_foreground_stays_silent_until_promoted() -> None:
    sim = Sim()
    turn = sim.user_turn()
    reply, fx = sim.acquire("host", CONTENT, "audiobooks", patience_ms=1000)
    assert reply.state == "pending" and fx == []
    assert sim.state(reply.activity_id) == "pending"
    fx = sim.release("bridge", turn)
    assert fx == [(turn, "none", "released"), (reply.activity_id, "foreground")]


def test_release_sends_none_then_promotes_the_paused_one() -> None:
    sim = Sim()
    book = sim.book()
    call, _ = sim.acquire("host", COMMS, "calls")
    fx = sim.release("host", call.activity_id)
    assert fx == [(call.activity_id, "none", "released"), (book, "foreground")]
    assert sim.core.arbiter.get(book).patience_deadline is None  # type: ignore[union-attr]


def test_same_identity_is_replaced_without_grace_new_on_before_old_off() -> None:
    sim = Sim()
    old = sim.book(patience_ms=60_000)
    new, fx = sim.acquire("host", CONTENT, "audiobooks", patience_ms=60_000)
    assert fx == [(new.activity_id, "foreground"), (old, "none", "replaced")]
    assert notices(sim.effects)[-2].replaces == old
    assert sim.state(old) is None


def test_replacing_a_paused_activity_keeps_the_new_one_silent() -> None:
    sim = Sim()
    old = sim.book()
    sim.user_turn()
    new, fx = sim.acquire("host", CONTENT, "audiobooks", patience_ms=60_000)
    assert new.state == "pending"
    assert fx == [(old, "none", "replaced")]


def test_same_channel_different_interface_stacks_and_unwinds() -> None:
    sim = Sim()
    book = sim.book()
    radio, fx = sim.acquire("host", CONTENT, "radio")
    assert fx == [(book, "background"), (radio.activity_id, "foreground")]
    assert sim.release("host", radio.activity_id) == [
        (radio.activity_id, "none", "released"),
        (book, "foreground"),
    ]


def test_patience_expiry_runs_the_hook_before_the_terminal_none() -> None:
    sim = Sim()
    book = sim.book(patience_ms=2000)
    call, _ = sim.acquire("host", COMMS, "calls")
    assert sim.advance(1.5) == []
    fx = sim.advance(1.0)
    assert fx == [("hook", book), (book, "none", "patience_expired")]
    assert sim.release("host", call.activity_id) == [(call.activity_id, "none", "released")]


def test_promotion_before_the_deadline_cancels_patience() -> None:
    sim = Sim()
    book = sim.book(patience_ms=2000)
    call, _ = sim.acquire("host", COMMS, "calls")
    sim.release("host", call.activity_id)
    assert sim.advance(5) == []
    assert sim.state(book) == "foreground"


def test_patience_keeps_running_while_the_foreground_changes() -> None:
    sim = Sim()
    book = sim.book(patience_ms=3000)
    turn = sim.user_turn()
    sim.advance(2)
    sim.turn_end(turn, pending=None)
    assert sim.state(book) == "foreground"  # resumed, so the timer is gone
    turn = sim.user_turn()
    call, _ = sim.acquire("host", COMMS, "calls")  # pending under DIALOG
    sim.turn_end(turn)  # DIALOG released: COMMS takes the floor, the book stays paused
    assert sim.state(book) == "background" and sim.state(call.activity_id) == "foreground"
    assert sim.advance(2.9) == []
    assert sim.advance(0.2) == [("hook", book), (book, "none", "patience_expired")]


def test_stop_foreground_ends_the_foreground_and_promotes() -> None:
    sim = Sim()
    book = sim.book()
    alert, _ = sim.acquire("host", ALERT, "siren")
    _, fx = sim.core.stop_foreground(sim.now)
    assert [(n.activity_id, n.state, n.reason) for n in notices(fx)] == [
        (alert.activity_id, "none", EndReason.STOPPED),
        (book, "foreground", None),
    ]


def test_stop_all_sends_none_to_everything_in_priority_order() -> None:
    sim = Sim()
    book = sim.book()
    radio, _ = sim.acquire("host", CONTENT, "radio", patience_ms=1000)
    turn = sim.user_turn()
    call, _ = sim.acquire("host", COMMS, "calls")  # pending under the turn
    _, fx = sim.core.stop_all(sim.now)
    assert [(n.activity_id, n.state) for n in notices(fx)] == [
        (turn, "none"),
        (call.activity_id, "none"),
        (radio.activity_id, "none"),
        (book, "none"),
    ]
    assert len(sim.core.arbiter) == 0


def test_stop_channel_is_cancel_media() -> None:
    sim = Sim()
    book = sim.book()
    turn = sim.user_turn()
    _, fx = sim.core.stop_channel(CONTENT, sim.now)
    assert [(n.activity_id, n.state, n.reason) for n in notices(fx)] == [(book, "none", EndReason.STOPPED)]
    assert sim.state(turn) == "foreground"


def test_comms_holds_one_claim() -> None:
    sim = Sim()
    sim.acquire("host", COMMS, "calls")
    with pytest.raises(WireError) as err:
        sim.acquire("host2", COMMS, "intercom")
    assert err.value.code == ErrorCode.CLAIM_BUSY


def test_releasing_what_you_do_not_hold_is_refused() -> None:
    sim = Sim()
    book = sim.book()
    with pytest.raises(WireError) as err:
        sim.release("intruder", book)
    assert err.value.code == ErrorCode.NOT_HOLDER
    with pytest.raises(WireError) as err:
        sim.release("host", "a-nope")
    assert err.value.code == ErrorCode.NOT_HOLDER
    assert sim.state(book) == "foreground"


def test_claim_end_reasons_travel_with_none() -> None:
    sim = Sim()
    call, _ = sim.acquire("host", COMMS, "calls")
    assert sim.release("host", call.activity_id, EndReason.ERROR) == [(call.activity_id, "none", "error")]


def test_a_silent_holder_loses_everything_and_the_next_is_promoted() -> None:
    sim = Sim()
    book = sim.book()
    alert, _ = sim.acquire("sirens", ALERT, "siren")
    assert sim.advance(2.5, renew=("bridge", "host")) == []
    fx = sim.advance(0.5, renew=("bridge", "host"))
    assert fx == [(alert.activity_id, "none", "lease_expired"), (book, "foreground")]
    assert "sirens" not in sim.core.holders


def test_renew_lists_what_the_holder_was_told_about() -> None:
    sim = Sim()
    book = sim.book()
    turn = sim.user_turn()
    reply, _ = sim.renew("host")
    assert reply.activity_ids == [book]
    reply, _ = sim.renew("bridge")
    assert reply.activity_ids == [turn]


def test_priorities_are_configurable() -> None:
    sim = Sim(priorities={DIALOG: 100, COMMS: 150, ALERT: 400, CONTENT: 300})
    siren, _ = sim.acquire("host", ALERT, "siren")
    book, fx = sim.acquire("host", CONTENT, "audiobooks")
    assert fx == [(siren.activity_id, "none", "displaced"), (book.activity_id, "foreground")]


def test_priorities_must_name_every_channel_once() -> None:
    with pytest.raises(ValueError):
        Sim(priorities={DIALOG: 1, COMMS: 2, ALERT: 3})
    with pytest.raises(ValueError):
        Sim(priorities={DIALOG: 1, COMMS: 1, ALERT: 3, CONTENT: 4})


def test_every_notice_has_the_next_sequence_number() -> None:
    sim = Sim()
    sim.book()
    turn = sim.user_turn()
    sim.turn_end(turn)
    seqs = [n.seq for n in notices(sim.effects)]
    assert seqs == list(range(1, len(seqs) + 1))
    assert sim.core.snapshot().seq == seqs[-1]
