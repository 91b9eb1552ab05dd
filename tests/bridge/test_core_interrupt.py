"""PTT during anything: the interrupt order, barge-in truncation at what was
really played, claims, and a turn losing its floor."""

from __future__ import annotations

from huxley_bridge import commands as c
from huxley_bridge import events as e
from huxley_wire.messages.focus import ActivityKind, Channel, EndReason, FocusState
from huxley_wire.messages.skills import AudioStreamEffect, InputClaimEffect

from .rig import Rig, tone


def speaking_turn() -> tuple[Rig, str, str]:
    """A user turn whose response is mid-speech; (rig, activity, response id)."""
    rig = Rig().connect()
    _, activity = rig.press("p1", 0)
    rig.talk()
    rig.release("p1", 500_000)
    rid, _ = rig.respond([("item-a", tone(600))], done=False)
    return rig, activity, rid


def test_interrupt_order() -> None:
    rig, activity, rid = speaking_turn()
    rig.feed(e.FunctionCall(rid, "item-f", "c1", "play_audiobook", "{}"))
    rig.tool_ok("c1", "ok", AudioStreamEffect(effect_id="e-book"))  # held for the barrier
    rig.feed(e.Played(activity, 240.0))
    out = rig.feed(e.PttStart("p2", 2_000_000))
    # drop flag + the pending effect dropped, then focus (content, claim, dialog)
    assert [type(x).__name__ for x in out if not isinstance(x, c.Publish)] == ["DiscardEffect", "Interrupt"]
    assert rig.one(out, c.DiscardEffect).reason == "user_ptt"
    assert rig.turn_phases(out) == ["cancelled"]
    token = rig.one(out, c.Interrupt).token
    # late model audio of the old response is never heard
    assert rig.of(rig.feed(e.AudioDelta(rid, "item-a", tone(100))), c.PublishAudio) == []
    done = rig.feed(e.InterruptDone(token))
    order = [
        type(x).__name__ + (":" + x.event["type"] if isinstance(x, c.SendModel) else "")
        for x in done
        if not (isinstance(x, c.Publish) and x.kind == "turn")
    ]
    assert order == [
        "ClearAudio",  # client audio cleared (after focus stopped the content)
        "Publish",  # model_speaking false
        "SendModel:response.cancel",
        "SendModel:input_audio_buffer.clear",
        "AcquireDialog",  # the new user turn
    ]
    assert rig.speaking(done) == [False]
    assert rig.one(done, c.ClearAudio).stream_id is None
    # the final played position arrives before audio-io answers the clear
    rig.feed(e.Played(activity, 260.0))
    cleared = rig.feed(e.AudioCleared(rig.one(done, c.ClearAudio).token))
    assert rig.sent(cleared, "conversation.item.truncate") == [
        {"type": "conversation.item.truncate", "item_id": "item-a", "content_index": 0, "audio_end_ms": 260}
    ]


def test_truncation_follows_items_in_the_stream() -> None:
    rig = Rig().connect()
    _, activity = rig.press("p1", 0)
    rig.talk()
    rig.release("p1", 500_000)
    rig.respond([("first", tone(200))], calls=[("c1", "get_current_time", {})])
    rig.tool_ok("c1")
    rig.respond([("second", tone(400))], done=False)
    rig.feed(e.Played(activity, 300.0))
    out = rig.feed(e.PttStart("p2", 2_000_000))
    done = rig.feed(e.InterruptDone(rig.one(out, c.Interrupt).token))
    cleared = rig.feed(e.AudioCleared(rig.one(done, c.ClearAudio).token))
    cuts = [(t["item_id"], t["audio_end_ms"]) for t in rig.sent(cleared, "conversation.item.truncate")]
    assert cuts == [("second", 100)]  # "first" was heard in full


def test_the_new_response_waits_for_the_cancelled_one_to_finish() -> None:
    rig, _, old_rid = speaking_turn()
    out = rig.feed(e.PttStart("p2", 2_000_000))
    done = rig.feed(e.InterruptDone(rig.one(out, c.Interrupt).token))
    rig.grant(done)
    rig.talk(300)
    out = rig.release("p2", 2_400_000)
    assert rig.model_types(out) == ["input_audio_buffer.commit"]  # no response.create yet
    out = rig.feed(e.ResponseDone(old_rid, "cancelled"))
    assert rig.model_types(out) == ["response.create"]
    _, out = rig.respond([("item-b", tone(100))])
    assert rig.audio(out)  # the new turn is heard


def test_supersede_a_late_effect_of_an_interrupted_turn_is_discarded() -> None:
    rig, _, rid = speaking_turn()
    rig.feed(e.FunctionCall(rid, "item-f", "c1", "play_audiobook", "{}"))
    out = rig.feed(e.PttStart("p2", 2_000_000))
    rig.feed(e.InterruptDone(rig.one(out, c.Interrupt).token))
    out = rig.tool_ok("c1", "ok", AudioStreamEffect(effect_id="e-late"))
    assert [(d.effect_id, d.reason) for d in rig.of(out, c.DiscardEffect)] == [("e-late", "user_ptt")]
    assert rig.model_types(out) == ["conversation.item.create"]  # its output, and no follow-up


def test_ptt_within_300ms_of_a_claim_is_ignored() -> None:
    rig = Rig().connect()
    out = rig.feed(e.PttStart("p1", 0))
    interrupt = rig.one(out, c.Interrupt)
    assert interrupt.claim_grace_ms == 300  # focus decides it atomically (FOCUS-4)
    rig.feed(e.MicAudio(tone(20)))
    done = rig.feed(e.InterruptDone(interrupt.token, ignored=True, claim_age_ms=120))
    assert done == []  # focus changed nothing: no clear, no new turn
    assert rig.core.turn is None
    rig.talk()
    assert rig.of(rig.log, c.AppendAudio) == []
    assert rig.feed(e.PttStop("p1", 500_000)) == []


def test_an_ignored_press_gives_back_the_dialog_of_a_turn_it_dropped() -> None:
    rig = Rig().connect()
    out = rig.feed(e.CompletionRequested("the book ended", 0))
    activity = rig.grant(out)
    out = rig.feed(e.PttStart("p1", 0))
    done = rig.feed(e.InterruptDone(rig.one(out, c.Interrupt).token, ignored=True))
    assert rig.one(done, c.ReleaseActivity).activity_id == activity
    assert rig.core.turn is None


def test_ptt_that_ends_a_claim_starts_no_turn() -> None:
    rig = Rig().connect()
    out = rig.feed(e.PttStart("p1", 0))
    token = rig.one(out, c.Interrupt).token  # focus ends the claim (user_ptt)
    done = rig.feed(e.InterruptDone(token, ended_claim=True, claim_age_ms=5000))
    assert rig.of(done, c.AcquireDialog) == []
    assert rig.of(done, c.ClearAudio)  # the claim's speaker is cleared all the same
    assert rig.core.turn is None
    rig.talk()
    assert rig.of(rig.log, c.AppendAudio) == []
    assert rig.feed(e.PttStop("p1", 800_000)) == []
    # the next press is an ordinary turn again
    rig.press("p2", 2_000_000)
    assert rig.core.turn is not None and rig.core.turn.kind == "user"


def test_ptt_after_turn_end_was_sent_leaves_that_turn_to_focus() -> None:
    rig = Rig().connect()
    rig.press()
    rig.talk()
    rig.release()
    rig.respond(calls=[("c1", "call_home", {})])
    rig.tool_ok("c1", "calling", InputClaimEffect(effect_id="k-call"))
    end = rig.one(rig.log, c.EndTurn)  # the claim went to focus with turn_end
    out = rig.feed(e.PttStart("p2", 3_000_000))
    assert rig.of(out, c.DiscardEffect) == [] and rig.turn_phases(out) == []
    assert end.pending is not None and end.pending.effect_id == "k-call"


def test_ptt_during_the_barrier_of_a_claim_turn_drops_the_claim() -> None:
    rig = Rig().connect()
    _, _activity = rig.press()
    rig.talk()
    rig.release()
    rig.respond([("i1", tone(100))], calls=[("c1", "call_home", {})])
    rig.tool_ok("c1", "calling", InputClaimEffect(effect_id="k-call"))
    rig.tick(0.5)  # speech released, waiting for the speaker to drain
    out = rig.feed(e.PttStart("p2", 3_000_000))
    assert [(d.effect_id, d.reason) for d in rig.of(out, c.DiscardEffect)] == [("k-call", "user_ptt")]
    assert rig.of(rig.log, c.EndTurn) == []


def test_losing_dialog_under_a_live_turn_cancels_it() -> None:
    rig, activity, rid = speaking_turn()
    out = rig.feed(
        e.ActivityChanged(
            activity, Channel.DIALOG, FocusState.NONE, "bridge", ActivityKind.TURN, EndReason.LEASE_EXPIRED
        )
    )
    assert rig.turn_phases(out) == ["cancelled"]
    assert rig.model_types(out) == ["response.cancel"]
    assert rig.one(out, c.ClearAudio).stream_id == activity
    assert rig.core.turn is None
    assert rig.of(rig.feed(e.AudioDelta(rid, "item-a", tone(100))), c.PublishAudio) == []


def test_dialog_granted_to_a_turn_that_is_gone_is_given_back() -> None:
    rig = Rig().connect()
    out = rig.feed(e.PttStart("p1", 0))
    done = rig.feed(e.InterruptDone(rig.one(out, c.Interrupt).token))
    acquire = rig.one(done, c.AcquireDialog)
    again = rig.feed(e.PttStart("p2", 50_000))  # a second press before focus granted
    rig.feed(e.InterruptDone(rig.one(again, c.Interrupt).token))
    out = rig.feed(e.DialogAcquired(acquire.turn_id, "a-stale"))
    assert rig.one(out, c.ReleaseActivity).activity_id == "a-stale"


def test_truncation_uses_what_audio_io_says_it_cleared() -> None:
    rig, activity, _ = speaking_turn()
    out = rig.feed(e.PttStart("p2", 2_000_000))
    done = rig.feed(e.InterruptDone(rig.one(out, c.Interrupt).token))
    token = rig.one(done, c.ClearAudio).token
    cleared = rig.feed(e.AudioCleared(token, played={activity: 412.0, "someone-else": 9.0}))
    assert [t["audio_end_ms"] for t in rig.sent(cleared, "conversation.item.truncate")] == [412]


def test_a_press_after_playback_caught_up_still_truncates_what_came_after_it() -> None:
    """Everything received was played when the button went down; one more
    delta arrives before focus answers the interrupt. The model must forget it."""
    rig, activity, rid = speaking_turn()  # 600 ms of item-a received
    rig.tick(1.0)
    rig.feed(e.Played(activity, 600.0))  # caught up with the model
    out = rig.feed(e.PttStart("p2", 2_000_000))
    token = rig.one(out, c.Interrupt).token
    rig.feed(e.AudioDelta(rid, "item-a", tone(100)))  # never heard
    done = rig.feed(e.InterruptDone(token))
    assert rig.sent(done, "response.cancel")
    cleared = rig.feed(e.AudioCleared(rig.one(done, c.ClearAudio).token, played={activity: 600.0}))
    assert rig.sent(cleared, "conversation.item.truncate") == [
        {"type": "conversation.item.truncate", "item_id": "item-a", "content_index": 0, "audio_end_ms": 600}
    ]


def test_a_cancelled_reply_is_truncated_even_when_all_it_sent_was_played() -> None:
    rig, activity, _ = speaking_turn()
    rig.tick(1.0)
    rig.feed(e.Played(activity, 600.0))
    out = rig.feed(e.PttStart("p2", 2_000_000))
    done = rig.feed(e.InterruptDone(rig.one(out, c.Interrupt).token))
    cleared = rig.feed(e.AudioCleared(rig.one(done, c.ClearAudio).token))
    assert [t["audio_end_ms"] for t in rig.sent(cleared, "conversation.item.truncate")] == [600]


def heard_lines(out: list[c.Command]) -> list[str]:
    return [x.message.text for x in out if isinstance(x, c.Publish) and x.kind == "transcript"]  # type: ignore[attr-defined]


def test_a_cancelled_reply_shows_and_keeps_only_the_words_that_were_heard() -> None:
    rig, activity, rid = speaking_turn()  # 600 ms of item-a
    rig.feed(e.Played(activity, 300.0))
    out = rig.feed(e.PttStart("p2", 2_000_000))
    done = rig.feed(e.InterruptDone(rig.one(out, c.Interrupt).token))
    rig.feed(e.AudioDelta(rid, "item-a", tone(200)))  # before the cancel took: 800 ms made in all
    # the model's transcript of the whole item arrives before audio-io answered the clear
    said = rig.feed(e.AssistantTranscript(rid, "item-a", "one two three four five six seven eight"))
    assert heard_lines(said) == []  # not yet known what was heard
    cleared = rig.feed(e.AudioCleared(rig.one(done, c.ClearAudio).token, played={activity: 300.0}))
    assert heard_lines(cleared) == ["one two three"]  # 300 of 800 ms: 3 of 8 words
    rig.feed(e.ResponseDone(rid, "cancelled"))


def test_a_transcript_after_the_truncation_is_cut_at_once() -> None:
    rig, activity, rid = speaking_turn()
    out = rig.feed(e.PttStart("p2", 2_000_000))
    done = rig.feed(e.InterruptDone(rig.one(out, c.Interrupt).token))
    rig.feed(e.AudioCleared(rig.one(done, c.ClearAudio).token, played={activity: 150.0}))
    said = rig.feed(e.AssistantTranscript(rid, "item-a", "a b c d"))
    assert heard_lines(said) == ["a"]  # 150 of 600 ms
