"""Tool dispatch: arrival order, output first, the error envelope, side
effects held for the barrier or applied at once, chained follow-ups."""

from __future__ import annotations

import pytest

from huxley_bridge import commands as c
from huxley_bridge import events as e
from huxley_wire.messages.focus import Channel
from huxley_wire.messages.skills import (
    AudioStreamEffect,
    CancelMediaEffect,
    InputClaimEffect,
    PlaySoundEffect,
    SetVolumeEffect,
)

from .rig import Rig, b64, tone


def committed_turn(**config: object) -> tuple[Rig, str]:
    rig = Rig(**config).connect()
    _, activity = rig.press()
    rig.talk()
    rig.release()
    return rig, activity


def test_calls_run_one_at_a_time_in_arrival_order_and_outputs_go_first() -> None:
    rig, _ = committed_turn()
    _, out = rig.respond(
        calls=[("c1", "get_current_time", {}), ("c2", "set_timer", {"seconds": 5, "message": "tea"})]
    )
    first = rig.one(out, c.CallTool)
    assert (first.call_id, first.skill, first.tool, first.args) == ("c1", "system", "get_current_time", {})
    assert first.timeout_s >= 30
    assert "response.create" not in rig.model_types(out)  # tools are still running
    out = rig.tool_ok("c1", {"time": "10:42"})
    assert rig.outputs(out) == [("c1", {"time": "10:42"})]
    second = rig.one(out, c.CallTool)
    assert (second.call_id, second.skill, second.args) == ("c2", "timers", {"seconds": 5, "message": "tea"})
    out = rig.tool_ok("c2", {"ok": True})
    # output first, then the follow-up response
    assert rig.model_types(out) == ["conversation.item.create", "response.create"]


def test_skill_error_becomes_the_error_envelope_and_a_follow_up() -> None:
    rig, _ = committed_turn()
    rig.respond(calls=[("c1", "set_timer", {"seconds": 5})])
    out = rig.feed(e.ToolFailed("c1", "tool_failed", "KeyError: 'message'"))
    assert rig.outputs(out) == [
        ("c1", {"error": "tool_failed", "tool": "set_timer", "message": "KeyError: 'message'"})
    ]
    assert rig.model_types(out)[-1] == "response.create"


@pytest.mark.parametrize(
    ("name", "arguments", "error"),
    [
        ("no_such_tool", "{}", "unknown_tool"),
        ("set_timer", '{"seconds": 5, "mess', "invalid_arguments"),
        ("set_timer", "[1, 2]", "invalid_arguments"),
    ],
)
def test_bad_calls_from_the_model_get_an_error_output_and_the_turn_goes_on(
    name: str, arguments: str, error: str
) -> None:
    rig, activity = committed_turn()
    _, out = rig.respond(calls=[("c1", name, arguments)])
    assert rig.of(out, c.CallTool) == []
    ((call_id, output),) = rig.outputs(out)
    assert call_id == "c1" and output["error"] == error and output["tool"] == name
    assert rig.model_types(out)[-1] == "response.create"
    rig.respond([("i2", tone(100))])
    rig.tick(1.0)
    assert rig.of(rig.drain(activity, 100), c.EndTurn)


def test_tool_timeout_is_an_error_output() -> None:
    rig, _ = committed_turn()
    rig.respond(calls=[("c1", "get_current_time", {})])
    out = rig.feed(e.ToolFailed("c1", "timeout", "no reply in 35 s"))
    assert rig.outputs(out) == [
        ("c1", {"error": "timeout", "tool": "get_current_time", "message": "no reply in 35 s"})
    ]
    assert "response.create" in rig.model_types(out)


def test_audio_stream_is_held_until_the_barrier_and_needs_no_follow_up() -> None:
    rig, activity = committed_turn()
    _, out = rig.respond([("i1", tone(200))], calls=[("c1", "play_audiobook", {"book_id": "moby"})])
    book = AudioStreamEffect(effect_id="e-book", patience_ms=1_800_000, label="Moby Dick")
    out = rig.tool_ok("c1", '{"playing": "Moby Dick"}', book, skill="audiobooks")
    assert "response.create" not in rig.model_types(out)
    assert rig.of(rig.log, c.EndTurn) == []  # speech before media
    rig.tick(1.0)
    end = rig.one(rig.drain(activity, 200), c.EndTurn)
    assert end.pending is not None
    assert (end.pending.kind, end.pending.effect_id, end.pending.host, end.pending.skill) == (
        "stream",
        "e-book",
        "host-1",
        "audiobooks",
    )
    assert (end.pending.patience_ms, end.pending.label) == (1_800_000, "Moby Dick")


def test_last_stream_wins_and_a_claim_beats_a_stream() -> None:
    rig, _activity = committed_turn()
    rig.respond(
        calls=[
            ("c1", "play_audiobook", {}),
            ("c2", "play_audiobook", {}),
            ("c3", "call_home", {}),
            ("c4", "play_audiobook", {}),
        ]
    )
    out = rig.tool_ok("c1", "ok", AudioStreamEffect(effect_id="s1"))
    out = rig.tool_ok("c2", "ok", AudioStreamEffect(effect_id="s2"))
    assert [(d.effect_id, d.reason) for d in rig.of(out, c.DiscardEffect)] == [("s1", "superseded")]
    out = rig.tool_ok("c3", "ok", InputClaimEffect(effect_id="k1", title="Call"))
    assert [(d.effect_id, d.reason) for d in rig.of(out, c.DiscardEffect)] == [("s2", "superseded")]
    out = rig.tool_ok("c4", "ok", AudioStreamEffect(effect_id="s3"))
    assert [(d.effect_id, d.reason) for d in rig.of(out, c.DiscardEffect)] == [("s3", "superseded")]
    end = rig.one(rig.log, c.EndTurn)  # no audio, no follow-up: straight to the barrier
    assert end.pending is not None and (end.pending.kind, end.pending.effect_id, end.pending.title) == (
        "claim",
        "k1",
        "Call",
    )


def test_cancel_media_and_set_volume_act_at_once_and_ask_for_a_follow_up() -> None:
    rig, _ = committed_turn()
    rig.respond(calls=[("c1", "audiobook_control", {"action": "stop"}), ("c2", "set_volume", {"level": 30})])
    out = rig.tool_ok("c1", "stopped", CancelMediaEffect())
    assert rig.one(out, c.StopChannel).channel == Channel.CONTENT
    assert "response.create" not in rig.model_types(out)  # the second call runs first
    out = rig.tool_ok("c2", "volume 30", SetVolumeEffect(level=30))
    assert rig.one(out, c.SetVolume).level == 30
    assert rig.model_types(out) == ["conversation.item.create", "response.create"]


def test_play_sound_plays_right_after_the_follow_up_is_requested() -> None:
    rig, activity = committed_turn()
    rig.respond([("i1", tone(100, 7))], calls=[("c1", "chime", {})])
    out = rig.tool_ok("c1", "ok", PlaySoundEffect(pcm_b64=b64(tone(60, 9))))
    assert rig.model_types(out)[-1] == "response.create"
    rig.respond([("i2", tone(100, 11))])
    rig.tick(1.0)
    assert rig.audio(rig.log, activity) == tone(100, 7) + tone(60, 9) + tone(100, 11)


def test_chained_follow_ups_and_their_limit() -> None:
    rig, _activity = committed_turn(follow_up_limit=3)
    rig.respond(calls=[("c1", "get_current_time", {})])
    rig.tool_ok("c1")
    rig.respond(calls=[("c2", "get_current_time", {})])  # the follow-up calls again
    out = rig.tool_ok("c2")
    assert rig.model_types(out)[-1] == "response.create"
    rig.respond(calls=[("c3", "get_current_time", {})])
    out = rig.tool_ok("c3")
    assert "response.create" not in rig.model_types(out)  # three responses: enough
    assert "too long" in rig.statuses(out)[0]
    assert rig.of(out, c.EndTurn)
    assert len(rig.sent(rig.log, "response.create")) == 3


def test_response_done_waits_for_running_tools() -> None:
    rig, _ = committed_turn()
    rid, out = rig.respond(calls=[("c1", "get_current_time", {})], done=False)
    out = rig.feed(e.ResponseDone(rid, "completed"))
    assert "response.create" not in rig.model_types(out)
    out = rig.tool_ok("c1")
    assert rig.model_types(out) == ["conversation.item.create", "response.create"]


def test_a_reply_for_an_unknown_call_is_ignored() -> None:
    rig, _ = committed_turn()
    assert rig.tool_ok("never-asked") == []
    assert rig.feed(e.ToolFailed("never-asked", "timeout", "x")) == []


def test_a_bad_sound_is_skipped_with_a_status() -> None:
    rig, _ = committed_turn()
    rig.respond(calls=[("c1", "chime", {})])
    out = rig.tool_ok("c1", "ok", PlaySoundEffect(pcm_b64="***"), skill="sounds")
    assert "sounds" in rig.statuses(out)[0]
    assert rig.model_types(out)[-1] == "response.create"
