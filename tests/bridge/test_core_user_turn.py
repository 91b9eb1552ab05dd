"""A user turn from PTT to the barrier: lifecycle, mic forwarding, the
accidental-tap filter, and the model-speaking edges."""

from __future__ import annotations

from typing import Any

from huxley_bridge import commands as c
from huxley_bridge import events as e
from huxley_wire.audio import FRAME_BYTES
from huxley_wire.messages.focus import ActivityKind

from .rig import Rig, tone


def test_lifecycle_of_a_user_turn() -> None:
    rig = Rig().connect()
    out = rig.feed(e.PttStart("p1", 0))
    assert [type(x) for x in out] == [c.Interrupt]  # nothing else before focus answered
    done = rig.feed(e.InterruptDone(rig.one(out, c.Interrupt).token))
    acquire = rig.one(done, c.AcquireDialog)
    assert acquire.meta.kind == ActivityKind.TURN and acquire.meta.turn_id == acquire.turn_id
    assert rig.model_types(done) == ["input_audio_buffer.clear"]
    assert rig.turn_phases(done) == ["listening"]
    activity = rig.grant(done)
    rig.talk(400)
    out = rig.release("p1", 450_000)
    assert rig.model_types(out) == ["input_audio_buffer.commit", "response.create"]
    assert rig.turn_phases(out) == ["committed", "thinking"]
    _, out = rig.respond([("item1", tone(300))])
    assert rig.turn_phases(out) == ["speaking", "draining"]
    frames = rig.of(out, c.PublishAudio)
    assert {f.stream_id for f in frames} == {activity}
    # The 200 ms lead's frames released at once, joined: ten frames, then one.
    assert [(f.seq, len(f.pcm)) for f in frames] == [(0, 10 * FRAME_BYTES), (10, FRAME_BYTES)]
    out = rig.tick(1.0)
    assert rig.of(out, c.PublishAudio)[-1].eos
    assert rig.audio(rig.log) == tone(300)
    assert rig.of(rig.log, c.EndTurn) == []  # not before the speaker played it out
    out = rig.drain(activity, 300)
    end = rig.one(out, c.EndTurn)
    assert (end.activity_id, end.inject_id, end.pending) == (activity, None, None)
    assert rig.turn_phases(out) == ["ended"]
    rig.feed(e.TurnEndDone(end.turn_id, "idle"))
    assert rig.core.turn is None


def test_mic_goes_to_the_model_only_while_listening() -> None:
    rig = Rig().connect()
    rig.feed(e.MicAudio(tone(20, 1)))  # no press: dropped
    out = rig.feed(e.PttStart("p1", 0))
    rig.feed(e.MicAudio(tone(20, 2)))  # the interrupt is running: kept for later
    rig.feed(e.MicAudio(tone(20, 3)))
    done = rig.feed(e.InterruptDone(rig.one(out, c.Interrupt).token))
    # the backlog follows the buffer clear, in order
    kinds = [type(x).__name__ for x in done if isinstance(x, c.SendModel | c.AppendAudio)]
    assert kinds == ["SendModel", "AppendAudio", "AppendAudio"]
    assert [x.pcm for x in rig.of(done, c.AppendAudio)] == [tone(20, 2), tone(20, 3)]
    rig.grant(done)
    assert rig.of(rig.feed(e.MicAudio(tone(20, 4))), c.AppendAudio)[0].pcm == tone(20, 4)
    rig.talk(200)
    rig.release("p1", 400_000)
    assert rig.of(rig.feed(e.MicAudio(tone(20, 5))), c.AppendAudio) == []  # after the stop
    rig.respond([("i", tone(100))])
    assert rig.of(rig.feed(e.MicAudio(tone(20, 6))), c.AppendAudio) == []


def test_accidental_tap_is_not_committed_and_says_so() -> None:
    rig = Rig().connect()
    _, activity = rig.press("p1", 0)
    rig.talk(100)
    out = rig.release("p1", 120_000)  # 120 ms < 133 ms
    assert "input_audio_buffer.commit" not in rig.model_types(out)
    assert "response.create" not in rig.model_types(out)
    assert rig.model_types(out) == ["input_audio_buffer.clear"]
    assert rig.statuses(out) == ["That was a very short press. Hold the button while you talk."]
    end = rig.one(out, c.EndTurn)  # the turn ends at once: nothing to play
    assert end.activity_id == activity
    assert rig.of(out, c.Publish)[-1].message.reason == "too_short"  # type: ignore[attr-defined]


def test_a_tap_released_before_focus_answered() -> None:
    rig = Rig().connect()
    out = rig.feed(e.PttStart("p1", 0))
    rig.feed(e.PttStop("p1", 80_000))
    done = rig.feed(e.InterruptDone(rig.one(out, c.Interrupt).token))
    assert "input_audio_buffer.commit" not in rig.model_types(done)
    assert rig.statuses(done)
    rig.grant(done)  # the turn ends once DIALOG is granted
    assert rig.of(rig.log, c.EndTurn)


def test_a_long_press_released_before_focus_answered_commits_once_listening() -> None:
    rig = Rig().connect()
    out = rig.feed(e.PttStart("p1", 0))
    for _ in range(15):
        rig.feed(e.MicAudio(tone(20)))
    rig.feed(e.PttStop("p1", 300_000))
    done = rig.feed(e.InterruptDone(rig.one(out, c.Interrupt).token))
    assert len(rig.of(done, c.AppendAudio)) == 15
    assert rig.model_types(done)[-2:] == ["input_audio_buffer.commit", "response.create"]


def test_model_speaking_has_one_rising_and_one_falling_edge_per_spoken_turn() -> None:
    rig = Rig().connect()
    _, activity = rig.press()
    rig.talk()
    rig.release()
    rig.respond([("i1", tone(100)), ("i1", tone(100))], calls=[("c1", "get_current_time", {})])
    rig.tool_ok("c1", {"time": "10:42"})
    rig.respond([("i2", tone(100))])
    rig.tick(1.0)
    rig.drain(activity, 300)
    assert rig.speaking(rig.log) == [True, False]
    # a turn that never spoke has no edge at all
    quiet = Rig().connect()
    _, activity = quiet.press()
    quiet.talk()
    quiet.release()
    quiet.respond()
    assert quiet.speaking(quiet.log) == []
    assert quiet.of(quiet.log, c.EndTurn)


def transcripts(out: list[c.Command], kind: str = "transcript") -> list[Any]:
    return [x.message for x in out if isinstance(x, c.Publish) and x.kind == kind]


def test_transcripts_are_published_with_the_turn_the_assistant_line_once_heard() -> None:
    rig = Rig().connect()
    turn_id, activity = rig.press()
    rig.talk()
    rig.release()
    out = rig.feed(e.UserTranscript("item-u", "what time is it"))
    rid, _ = rig.respond([("i1", tone(100))], done=False)
    out += rig.feed(e.AssistantTranscript(rid, "i1", "It is noon."))
    sent = [(x.role, x.text, x.turn_id) for x in transcripts(out)]
    assert sent == [("user", "what time is it", turn_id)]  # the reply is not heard yet
    out = rig.feed(e.Played(activity, 60.0))
    assert transcripts(out) == []
    out = rig.feed(e.Played(activity, 100.0))
    assert [(x.role, x.text, x.turn_id) for x in transcripts(out)] == [("assistant", "It is noon.", turn_id)]


def test_the_live_text_streams_as_transcript_deltas_of_the_turn() -> None:
    rig = Rig().connect()
    turn_id, _ = rig.press()
    rig.talk()
    rig.release()
    rid, _ = rig.respond([("i1", tone(100))], done=False)
    out = rig.feed(e.AssistantTranscriptDelta(rid, "i1", "It is"))
    out += rig.feed(e.AssistantTranscriptDelta(rid, "i1", " noon."))
    deltas = transcripts(out, "transcript_delta")
    assert [(d.role, d.delta, d.turn_id, d.item_id) for d in deltas] == [
        ("assistant", "It is", turn_id, "i1"),
        ("assistant", " noon.", turn_id, "i1"),
    ]
    rig.feed(e.PttStart("p2", 900_000))  # a cancelled reply's live text stops at the press
    assert transcripts(rig.feed(e.AssistantTranscriptDelta(rid, "i1", " More.")), "transcript_delta") == []


def test_drain_deadline_when_audio_io_never_reports() -> None:
    rig = Rig(drain_grace_s=2.0).connect()
    rig.press()
    rig.talk()
    rig.release()
    rig.respond([("i1", tone(500))])
    rig.tick(0.6)  # everything released, the end of stream included
    assert rig.of(rig.log, c.EndTurn) == []
    deadline = rig.core.next_deadline()
    assert deadline is not None and deadline > rig.now
    out = rig.tick(deadline - rig.now + 0.01)
    assert rig.of(out, c.EndTurn)
    assert "moving on" in rig.statuses(out)[0]


def test_commit_waits_for_the_press_frames_that_the_stop_overtook() -> None:
    rig = Rig().connect()
    rig.press("p1", 0)
    for _ in range(15):
        rig.feed(e.MicAudio(tone(20), press_id="p1"))
    out = rig.feed(e.PttStop("p1", 400_000, frames=20))  # 5 frames still on their way
    assert "input_audio_buffer.commit" not in rig.model_types(out)
    rig.feed(e.MicAudio(tone(20), press_id="other-press"))  # not this press: ignored
    for _ in range(4):
        assert "input_audio_buffer.commit" not in rig.model_types(
            rig.feed(e.MicAudio(tone(20), press_id="p1"))
        )
    out = rig.feed(e.MicAudio(tone(20), press_id="p1"))
    assert rig.model_types(out) == ["input_audio_buffer.commit", "response.create"]
    assert len(rig.of(rig.log, c.AppendAudio)) == 20
    assert rig.of(rig.feed(e.MicAudio(tone(20), press_id="p1")), c.AppendAudio) == []  # frame 21: too many


def test_commit_goes_ahead_when_frames_never_arrive() -> None:
    rig = Rig(mic_tail_wait_ms=250).connect()
    rig.press("p1", 0)
    rig.talk(300)
    rig.feed(e.PttStop("p1", 400_000, frames=40))
    deadline = rig.core.next_deadline()
    assert deadline is not None and deadline == rig.now + 0.25
    assert "input_audio_buffer.commit" not in rig.model_types(rig.tick(0.2))
    assert rig.model_types(rig.tick(0.06)) == ["input_audio_buffer.commit", "response.create"]
