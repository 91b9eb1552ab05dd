"""Realtime-bridge messages.

Subjects:
  bridge.inject                RunInject (from focus only)
  bridge.rpc                   Completion (from a skill-host), BridgeSnapshotRequest
  bridge.event.turn            TurnEvent on every turn phase change
  bridge.event.transcript      TranscriptEvent (user and assistant text; an assistant
                               line is what the user heard, cut if the reply was interrupted)
  bridge.event.transcript_delta TranscriptDeltaEvent (the assistant's live text as it speaks)
  bridge.event.status          StatusEvent (short human-readable status line)
  bridge.event.state           StateEvent (IDLE / CONNECTING / CONVERSING)
  bridge.event.model_speaking  ModelSpeakingEvent
  bridge.event.session         SessionEvent (model socket up/down, offline mode)
  bridge.event.cost            CostEvent (today's model spend crossed a threshold)
  bridge.event.tool_call       ToolCallEvent (a tool call the model made, with its output)
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from huxley_wire.codec import Message, Ok, Request
from huxley_wire.messages.focus import InjectPriority


class InjectAccepted(Message):
    inject_id: str
    status: Literal["accepted", "already_running", "already_done"]


class RunInject(Request[InjectAccepted]):
    """focus -> bridge: run this injected turn now. DIALOG is already granted to
    `activity_id` (holder = the bridge). Idempotent on inject_id."""

    op = "run_inject"
    inject_id: str
    prompt: str
    activity_id: str
    priority: InjectPriority


class Completion(Request[Ok]):
    """skill-host -> bridge: a stream ended naturally with on_complete_prompt."""

    op = "completion"
    prompt: str = Field(min_length=1, max_length=16 * 1024)
    silence_ms: int = Field(default=0, ge=0, le=10_000)
    skill: str | None = None
    effect_id: str | None = None


class BridgeSnapshot(Message):
    state: Literal["IDLE", "CONNECTING", "CONVERSING"]
    connected: bool
    offline: bool  # offline mode: no OpenAI key (the voice is the simulator, or none)
    simulated: bool = False  # offline mode talking to huxley-realtime-sim
    turn_id: str | None = None
    turn_kind: Literal["user", "completion", "injected"] | None = None
    phase: str | None = None
    tools: list[str] = Field(default_factory=list)
    model: str = ""
    cost_usd_today: float = 0.0


class BridgeSnapshotRequest(Request[BridgeSnapshot]):
    op = "snapshot"


class TurnEvent(Message):
    turn_id: str
    kind: Literal["user", "completion", "injected"]
    phase: Literal["listening", "committed", "thinking", "speaking", "draining", "ended", "cancelled"]
    activity_id: str | None = None
    inject_id: str | None = None
    reason: str | None = None


class TranscriptEvent(Message):
    role: Literal["user", "assistant"]
    text: str
    turn_id: str | None = None
    item_id: str | None = None  # an assistant line: the item its `transcript_delta`s named


class TranscriptDeltaEvent(Message):
    """A piece of the assistant's text while it speaks, in order; the item's
    `transcript` line follows once it was heard (deltas of a reply cut short
    are not taken back: its `transcript` line says what was heard)."""

    role: Literal["assistant"] = "assistant"
    delta: str
    turn_id: str | None = None
    item_id: str | None = None  # the model's item: deltas of one item join into one line


class StatusEvent(Message):
    message: str


class StateEvent(Message):
    value: Literal["IDLE", "CONNECTING", "CONVERSING"]


class ModelSpeakingEvent(Message):
    value: bool
    turn_id: str | None = None


class SessionEvent(Message):
    """The model session. `offline`: offline mode, no OpenAI key; `simulated`:
    offline mode with the local simulator as the voice (connected when it is
    up), without it there is no voice at all."""

    connected: bool
    offline: bool = False
    simulated: bool = False
    model: str = ""
    attempt: int = 0
    message: str = ""


class CostEvent(Message):
    """Today's model spend crossed a threshold (warn / canary / kill: the
    kill switch closes the session until the next day)."""

    day: str  # the persona's local date, YYYY-MM-DD
    usd: float
    level: Literal["ok", "warn", "canary", "kill"]


class ToolCallEvent(Message):
    """A tool call answered (or failed): what the client's dev panel shows as
    `dev_event tool_call`. `action` names the side effect the reply carried
    (audio_stream, input_claim, play_sound, cancel_media, set_volume), None
    without one; `error` is set when the call failed (then `output` is what
    the model was told)."""

    name: str
    args: dict[str, Any] = Field(default_factory=dict)
    output: str = ""
    action: str | None = None
    skill: str | None = None
    call_id: str | None = None
    turn_id: str | None = None
    error: str | None = None
