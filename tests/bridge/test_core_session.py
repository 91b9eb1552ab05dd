"""The model session dropping under a turn: nothing stays stuck, no DIALOG
stays held, no effect of a broken turn starts."""

from __future__ import annotations

from huxley_bridge import commands as c
from huxley_bridge import events as e
from huxley_wire.messages.focus import InjectPriority
from huxley_wire.messages.skills import AudioStreamEffect

from .rig import Rig, tone


def test_drop_mid_response_plays_out_what_was_sent_then_ends_the_turn() -> None:
    rig = Rig().connect()
    _, activity = rig.press()
    rig.talk()
    rig.release()
    rig.respond([("i1", tone(300))], done=False)
    out = rig.feed(e.ModelDisconnected("socket closed"))
    assert rig.statuses(out) == ["I can't reach my voice right now. I'll keep trying."]
    rig.tick(1.0)
    assert rig.of(rig.log, c.PublishAudio)[-1].eos
    end = rig.one(rig.drain(activity, 300), c.EndTurn)
    assert end.pending is None
    rig.feed(e.TurnEndDone(end.turn_id))
    assert rig.core.turn is None
    # back online: the next press is a normal turn
    rig.feed(e.ModelConnected())
    rig.press("p2", 5_000_000)
    assert rig.core.turn is not None and rig.core.turn.phase == "listening"


def test_drop_while_a_tool_runs_discards_its_effect_and_ends_the_turn() -> None:
    rig = Rig().connect()
    rig.press()
    rig.talk()
    rig.release()
    rig.respond(calls=[("c1", "play_audiobook", {})])
    rig.feed(e.ModelDisconnected("gone"))
    assert rig.of(rig.log, c.EndTurn) == []  # the tool is still running
    out = rig.tool_ok("c1", "ok", AudioStreamEffect(effect_id="e-book"))
    assert [(d.effect_id, d.reason) for d in rig.of(out, c.DiscardEffect)] == [("e-book", "error")]
    assert rig.sent(out) == []  # nothing goes to a closed socket
    end = rig.one(out, c.EndTurn)
    assert end.pending is None


def test_drop_while_listening_ends_the_turn() -> None:
    rig = Rig().connect()
    _, activity = rig.press()
    rig.talk(200)
    out = rig.feed(e.ModelDisconnected("gone"))
    assert rig.one(out, c.EndTurn).activity_id == activity
    assert rig.of(rig.feed(e.MicAudio(tone(20))), c.AppendAudio) == []
    assert rig.release() == []


def test_drop_with_queued_injects_hands_their_dialog_back() -> None:
    rig = Rig().connect()
    rig.press()
    rig.feed(e.RunInjectRequested("inj-1", "Tell the user: hi", "a-inj", InjectPriority.NORMAL))
    out = rig.feed(e.ModelDisconnected("gone"))
    ends = {x.activity_id: x.inject_id for x in rig.of(out, c.EndTurn)}
    assert ends["a-inj"] == "inj-1"


def test_a_refused_response_create_does_not_wedge_the_turn() -> None:
    rig = Rig().connect()
    _, activity = rig.press()
    rig.talk()
    out = rig.release()
    create = rig.sent(out, "response.create")[0]
    out = rig.feed(e.ModelError("busy", "conversation_already_has_active_response", create["event_id"]))
    assert "refused" in rig.statuses(out)[0]
    assert rig.one(out, c.EndTurn).activity_id == activity


def test_reconnect_resets_the_in_flight_response() -> None:
    rig = Rig().connect()
    _, _activity = rig.press()
    rig.talk()
    rig.release()
    rig.feed(e.ModelDisconnected("gone"))
    rig.feed(e.TurnEndDone(rig.one(rig.log, c.EndTurn).turn_id))
    rig.feed(e.ModelConnected())
    rig.press("p2", 9_000_000)
    rig.talk()
    out = rig.release("p2", 9_600_000)
    assert rig.model_types(out) == ["input_audio_buffer.commit", "response.create"]


def test_a_server_error_mid_response_ends_the_turn_with_a_status() -> None:
    """No response.done follows: the turn must not wait for one."""
    rig = Rig().connect()
    _, activity = rig.press()
    rig.talk()
    rig.release()
    rig.respond([("i1", tone(200))], done=False)
    out = rig.feed(e.ModelError("The server had an error", "server_error", None, "server_error"))
    assert any("could not answer" in s for s in rig.statuses(out))
    out += rig.tick(1.0)
    out += rig.drain(activity, 200.0)
    assert rig.one(out, c.EndTurn).activity_id == activity  # DIALOG handed back at the barrier
    assert rig.turn_phases(out)[-1] == "ended"


def test_an_error_answering_something_else_leaves_the_response_alone() -> None:
    rig = Rig().connect()
    rig.press()
    rig.talk()
    rig.release()
    rig.respond([("i1", tone(200))], done=False)
    out = rig.feed(e.ModelError("Item not found", "item_not_found", None, "invalid_request_error"))
    assert rig.statuses(out) == [] and rig.core.turn is not None and rig.core.turn.phase == "speaking"
