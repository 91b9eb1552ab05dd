"""Injected turns fired by focus, completion turns, and what happens to
them while another turn runs or the model is away."""

from __future__ import annotations

from huxley_bridge import commands as c
from huxley_bridge import events as e
from huxley_wire.messages.focus import ActivityKind, Channel, EndReason, FocusState, InjectPriority
from huxley_wire.messages.skills import AudioStreamEffect

from .rig import Rig, tone

FIRE = e.RunInjectRequested(
    "inj-1", "Tell the user: the tea is ready", "a-inj", InjectPriority.BLOCK_BEHIND_COMMS
)


def test_injected_turn_clears_client_audio_sends_the_prompt_and_speaks() -> None:
    rig = Rig().connect()
    out = rig.feed(FIRE)
    assert rig.one(out, c.InjectReply).status == "accepted"
    clear = rig.one(out, c.ClearAudio)
    assert clear.stream_id == "a-inj"  # only our own audio: paused content keeps its buffer
    assert rig.sent(out, "conversation.item.create")[0]["item"] == {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "Tell the user: the tea is ready"}],
    }
    assert rig.model_types(out) == ["conversation.item.create", "response.create"]
    assert rig.of(out, c.AcquireDialog) == []  # focus already holds DIALOG for it
    _, out = rig.respond([("i1", tone(200))])
    assert rig.audio(out) == b""  # held until the clear is done
    out = rig.feed(e.AudioCleared(clear.token))
    assert {f.stream_id for f in rig.of(out, c.PublishAudio)} == {"a-inj"}
    rig.tick(1.0)
    end = rig.one(rig.drain("a-inj", 200), c.EndTurn)
    assert (end.activity_id, end.inject_id) == ("a-inj", "inj-1")  # focus publishes `done` for the waiter


def test_run_inject_is_idempotent_on_inject_id() -> None:
    rig = Rig().connect()
    rig.feed(FIRE)
    assert rig.one(rig.feed(FIRE), c.InjectReply).status == "already_running"
    clear = rig.one(rig.log, c.ClearAudio)
    rig.feed(e.AudioCleared(clear.token))
    rig.respond()
    end = rig.one(rig.log, c.EndTurn)
    again = rig.feed(FIRE)
    assert [type(x) for x in again] == [c.InjectReply]
    assert rig.one(again, c.InjectReply).status == "already_done"
    rig.feed(e.TurnEndDone(end.turn_id, "idle"))
    assert rig.one(rig.feed(FIRE), c.InjectReply).status == "already_done"


def test_inject_during_a_user_turn_waits_for_its_end() -> None:
    rig = Rig().connect()
    _, activity = rig.press()
    rig.talk()
    out = rig.feed(FIRE)  # focus raced the PTT
    assert rig.one(out, c.InjectReply).status == "accepted"
    assert rig.model_types(out) == []
    rig.release()
    rig.respond([("i1", tone(100))])
    rig.tick(1.0)
    end = rig.one(rig.drain(activity, 100), c.EndTurn)
    out = rig.feed(e.TurnEndDone(end.turn_id, "idle"))
    assert rig.sent(out, "conversation.item.create")[0]["item"]["content"][0]["text"].startswith(
        "Tell the user"
    )


def test_queued_inject_whose_grant_was_lost_asks_for_dialog_again() -> None:
    rig = Rig().connect()
    rig.press()
    rig.feed(FIRE)
    rig.feed(
        e.ActivityChanged(
            "a-inj", Channel.DIALOG, FocusState.NONE, "bridge", ActivityKind.TURN, EndReason.USER_PTT
        )
    )
    rig.talk()
    rig.release("p1", 90_000)  # a tap: the user turn ends at once
    out = rig.feed(e.TurnEndDone(rig.one(rig.log, c.EndTurn).turn_id))
    acquire = rig.one(out, c.AcquireDialog)
    assert acquire.meta.inject_id == "inj-1"


def test_inject_while_the_previous_turn_waits_for_turn_end_runs_at_once() -> None:
    rig = Rig().connect()
    _, _activity = rig.press()
    rig.talk()
    rig.release()
    rig.respond()
    rig.one(rig.log, c.EndTurn)  # sent; focus fires the queue head before replying
    out = rig.feed(FIRE)
    assert rig.model_types(out) == ["conversation.item.create", "response.create"]


def test_completion_turn_prompt_response_then_silence() -> None:
    rig = Rig().connect()
    out = rig.feed(e.CompletionRequested("The book is over. Say so.", silence_ms=500, skill="audiobooks"))
    activity = rig.grant(out)
    assert rig.model_types(out) == ["conversation.item.create", "response.create"]
    assert rig.sent(out)[0]["item"]["content"][0]["text"] == "The book is over. Say so."
    _, out = rig.respond([("i1", tone(300, 5))])
    rig.tick(2.0)
    assert rig.audio(rig.log, activity) == tone(300, 5) + bytes(500 * 48)
    assert rig.of(rig.log, c.PublishAudio)[-1].eos
    end = rig.one(rig.drain(activity, 800), c.EndTurn)
    assert end.inject_id is None and end.activity_id == activity


def test_completion_during_a_turn_runs_after_it() -> None:
    rig = Rig().connect()
    _, _activity = rig.press()
    assert rig.of(rig.feed(e.CompletionRequested("done", 0)), c.AcquireDialog) == []
    rig.talk()
    rig.release()
    rig.respond()
    out = rig.feed(e.TurnEndDone(rig.one(rig.log, c.EndTurn).turn_id))
    assert rig.of(out, c.AcquireDialog)


def test_a_turn_that_ends_with_an_effect_hands_it_over_with_the_inject_id() -> None:
    rig = Rig().connect()
    out = rig.feed(FIRE)
    rig.feed(e.AudioCleared(rig.one(out, c.ClearAudio).token))
    rig.respond(calls=[("c1", "play_audiobook", {})])
    rig.tool_ok("c1", "ok", AudioStreamEffect(effect_id="e-resume"))
    end = rig.one(rig.log, c.EndTurn)
    assert end.inject_id == "inj-1" and end.pending is not None and end.pending.effect_id == "e-resume"


def test_while_offline_an_inject_is_refused_unavailable_and_presses_only_interrupt() -> None:
    rig = Rig()  # never connected
    out = rig.feed(FIRE)
    assert out == [c.InjectReply("inj-1", "unavailable")]  # not taken: focus re-queues it (FOCUS-12)
    # Focus takes that DIALOG back: the NONE is nothing of ours.
    none = e.ActivityChanged(
        "a-inj", Channel.DIALOG, FocusState.NONE, "bridge", ActivityKind.TURN, EndReason.ERROR
    )
    assert rig.feed(none) == []
    rig.connect()
    refired = rig.feed(e.RunInjectRequested("inj-1", FIRE.prompt, "a-inj2", FIRE.priority))
    assert rig.one(refired, c.InjectReply).status == "accepted"  # not remembered as done
    assert rig.core.turn is not None and rig.core.turn.activity_id == "a-inj2"
    gone = rig.feed(e.ModelDisconnected("gone"))
    rig.feed(e.TurnEndDone(rig.one(gone, c.EndTurn).turn_id))
    out = rig.feed(e.PttStart("p1", 0))
    assert rig.of(out, c.Interrupt)  # content still stops
    done = rig.feed(e.InterruptDone(rig.one(out, c.Interrupt).token))
    assert rig.of(done, c.AcquireDialog) == [] and rig.core.turn is None
    out = rig.feed(e.CompletionRequested("x"))
    assert len(out) == 1 and rig.statuses(out) == [rig.core.config.offline_message]


def test_an_inject_waiting_for_the_floor_when_the_model_drops_ends_with_a_status_and_its_turn_end() -> None:
    rig = Rig().connect()
    rig.press()
    assert rig.one(rig.feed(FIRE), c.InjectReply).status == "accepted"  # waits behind the press
    out = rig.feed(e.ModelDisconnected("gone"))
    end = next(cmd for cmd in rig.of(out, c.EndTurn) if cmd.inject_id == "inj-1")
    assert end.activity_id == "a-inj" and end.pending is None
    assert any("announcement was not spoken" in s for s in rig.statuses(out))


def test_an_inject_after_a_user_turn_clears_that_turns_stream_only() -> None:
    rig = Rig().connect()
    _, activity = rig.press()
    rig.talk()
    rig.release()
    rig.respond()
    rig.feed(e.TurnEndDone(rig.one(rig.log, c.EndTurn).turn_id))
    out = rig.feed(FIRE)
    assert rig.one(out, c.ClearAudio).stream_id == activity
