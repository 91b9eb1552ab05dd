"""Following focus (pure) and what the client is told about it."""

from __future__ import annotations

import math

from huxley_audio_io.focus_view import FocusView
from huxley_audio_io.mixer import Grant
from huxley_audio_io.relay import ClientRelay
from huxley_runtime.focus_client import ActivityStatus
from huxley_wire.messages.focus import (
    ActivityKind,
    ActivityMeta,
    Behavior,
    Channel,
    ContentType,
    EndReason,
    FocusState,
)

STATE = {
    FocusState.FOREGROUND: (Behavior.PRIMARY, 1.0),
    FocusState.BACKGROUND: (Behavior.MUST_PAUSE, 0.0),
    FocusState.NONE: (Behavior.MUST_STOP, 0.0),
}


def event(activity_id, channel, state, seq=1, reason=None, **meta):
    behavior, gain = STATE[state]
    kind = {Channel.COMMS: ActivityKind.CLAIM, Channel.CONTENT: ActivityKind.STREAM}.get(
        channel, ActivityKind.TURN
    )
    return ActivityStatus(
        seq=seq,
        activity_id=activity_id,
        channel=channel,
        interface="x",
        holder="h",
        content_type=ContentType.NONMIXABLE,
        state=state,
        behavior=behavior,
        gain=gain,
        ramp_ms=100,
        reason=reason,
        meta=ActivityMeta(kind=kind, **meta),
    )


def types(messages):
    return [m["type"] if m["type"] != "dev_event" else f"dev_event:{m['kind']}" for m in messages]


def test_claim_lifecycle_routes_the_mic_and_tells_the_client():
    view, relay = FocusView(), ClientRelay()
    claim = event("c-1", Channel.COMMS, FocusState.FOREGROUND, skill="phone", title="Mario")
    started = relay.focus(view.apply(claim, now=10.0))
    assert types(started) == ["dev_event:focus", "claim_started", "input_mode"]
    assert started[1] == {"type": "claim_started", "claim_id": "c-1", "skill": "phone", "title": "Mario"}
    assert started[2] == {
        "type": "input_mode",
        "mode": "skill_continuous",
        "reason": "claim_started",
        "claim_id": "c-1",
    }
    assert view.foreground_claim() == claim
    assert view.claim_age_ms(now=10.25) == 250.0

    paused = relay.focus(view.apply(event("c-1", Channel.COMMS, FocusState.BACKGROUND, seq=2), now=11.0))
    assert paused[-1]["mode"] == "assistant_ptt" and paused[-1]["reason"] == "claim_paused"
    assert view.foreground_claim() is None
    resumed = relay.focus(view.apply(event("c-1", Channel.COMMS, FocusState.FOREGROUND, seq=3), now=12.0))
    assert resumed[-1]["reason"] == "claim_resumed"
    assert view.claim_age_ms(now=12.0) == 2000.0  # the claim started at its first grant

    ended = relay.focus(
        view.apply(event("c-1", Channel.COMMS, FocusState.NONE, seq=4, reason=EndReason.USER_PTT), now=13.0)
    )
    assert types(ended) == ["dev_event:focus", "claim_ended", "input_mode"]
    assert ended[1]["end_reason"] == "user_ptt"
    assert ended[2]["mode"] == "assistant_ptt" and ended[2]["reason"] == "claim_ended"
    assert view.live() == []


def test_streams_start_and_end_naturally_or_interrupted():
    view, relay = FocusView(), ClientRelay()
    book = event("s-1", Channel.CONTENT, FocusState.FOREGROUND, label="Moby Dick", preroll_ms=300)
    assert relay.focus(view.apply(book, 0.0))[1] == {
        "type": "stream_started",
        "stream_id": "s-1",
        "label": "Moby Dick",
        "preroll_ms": 300,
    }
    assert types(relay.focus(view.apply(event("s-1", Channel.CONTENT, FocusState.BACKGROUND), 0.0))) == [
        "dev_event:focus"
    ]
    gone = relay.focus(
        view.apply(event("s-1", Channel.CONTENT, FocusState.NONE, reason=EndReason.USER_PTT), 0.0)
    )
    assert gone[1] == {"type": "stream_ended", "stream_id": "s-1", "end_reason": "interrupted"}
    relay.focus(view.apply(event("s-2", Channel.CONTENT, FocusState.FOREGROUND), 0.0))
    done = relay.focus(
        view.apply(event("s-2", Channel.CONTENT, FocusState.NONE, reason=EndReason.RELEASED), 0.0)
    )
    assert done[1]["end_reason"] == "natural"


def test_a_claim_learnt_from_a_snapshot_is_not_just_started():
    view = FocusView()
    view.apply(event("c-9", Channel.COMMS, FocusState.FOREGROUND), now=100.0, fresh=False)
    assert view.claim_age_ms(now=100.0) == math.inf  # a PTT is never "just after" such a claim


def test_pending_is_held_silent_and_does_not_count_as_started():
    view, relay = FocusView(), ClientRelay()
    pending = ActivityStatus(
        activity_id="s-3",
        channel=Channel.CONTENT,
        interface="audiobooks",
        holder="h",
        content_type=ContentType.NONMIXABLE,
        state="pending",
        behavior=None,
        gain=0.0,
        ramp_ms=0,
        meta=ActivityMeta(kind=ActivityKind.STREAM),
        seq=1,
    )
    assert not Grant.of(pending).audible
    messages = relay.focus(view.apply(pending, 0.0))
    assert [m["type"] for m in messages] == ["dev_event"] and messages[0]["payload"]["state"] == "pending"
    promoted = relay.focus(view.apply(event("s-3", Channel.CONTENT, FocusState.FOREGROUND, seq=2), 0.0))
    assert promoted[1]["type"] == "stream_started"


def test_bridge_events_become_client_messages_and_the_handshake_keeps_the_order():
    relay, view = ClientRelay(), FocusView()
    assert relay.bridge_event("state", {"v": 1, "value": "CONVERSING"}) == [
        {"type": "state", "value": "CONVERSING"}
    ]
    assert relay.bridge_event("transcript", {"v": 1, "role": "user", "text": "hi"}) == [
        {"type": "transcript", "role": "user", "text": "hi"}
    ]
    assert relay.bridge_event("model_speaking", {"v": 1, "value": True}) == [
        {"type": "model_speaking", "value": True}
    ]
    assert relay.bridge_event("status", {"v": 1, "message": "Listening"}) == [
        {"type": "status", "message": "Listening"}
    ]
    turn = relay.bridge_event("turn", {"v": 1, "turn_id": "t-1", "kind": "user", "phase": "listening"})
    assert turn[0]["type"] == "dev_event" and turn[0]["kind"] == "turn"
    assert turn[1] == {"type": "status", "message": "Listening... (release to send)"}  # the reference's words
    view.apply(event("c-1", Channel.COMMS, FocusState.FOREGROUND), 0.0)
    relay.focus(view.apply(event("c-1", Channel.COMMS, FocusState.FOREGROUND, seq=2), 0.0))
    relay.volume = 40
    personas = [{"name": "basic", "display_name": "basic", "language": "en"}]
    hello, state, mode, *rest = relay.handshake("es", "basic", personas, view)
    assert hello == {
        "type": "hello",
        "protocol": 2,
        "language": "es",
        "current_persona": "basic",
        "available_personas": personas,
        "install_in_progress": False,
    }
    assert state == {"type": "state", "value": "CONVERSING"}
    # A client that connects mid-call goes straight to continuous mic.
    assert mode == {"type": "input_mode", "mode": "skill_continuous", "reason": "idle", "claim_id": "c-1"}
    assert rest[0]["kind"] == "focus_snapshot" and rest[0]["payload"]["activities"][0]["activity_id"] == "c-1"
    assert rest[-1] == {"type": "set_volume", "level": 40}
