"""What the turn coordinator consumes: bus events, replies to the requests it
asked for, and the model's server events (already decoded by the session
wrapper). Plain frozen dataclasses, so tests build them by hand."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from huxley_wire.messages.focus import ActivityKind, Channel, EndReason, FocusState, InjectPriority
from huxley_wire.messages.skills import ToolReply


# -- from the bus -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PttStart:
    press_id: str
    ts_us: int  # when the button went down at the edge


@dataclass(frozen=True, slots=True)
class PttStop:
    press_id: str
    ts_us: int
    frames: int | None = None  # mic frames the edge published for this press (AUDIO-4)


@dataclass(frozen=True, slots=True)
class MicAudio:
    pcm: bytes
    press_id: str | None = None  # the frame's stream: the press it belongs to


@dataclass(frozen=True, slots=True)
class Played:
    """audio-io's report for one output stream."""

    stream_id: str
    played_ms: float
    drained: bool = False


@dataclass(frozen=True, slots=True)
class ActivityChanged:
    """A focus activity event (any holder)."""

    activity_id: str
    channel: Channel
    state: FocusState
    holder: str
    kind: ActivityKind = ActivityKind.OTHER
    reason: EndReason | None = None


@dataclass(frozen=True, slots=True)
class RunInjectRequested:
    """focus fired an inject: DIALOG is already held for it (activity_id)."""

    inject_id: str
    prompt: str
    activity_id: str
    priority: InjectPriority = InjectPriority.NORMAL


@dataclass(frozen=True, slots=True)
class CompletionRequested:
    """A stream ended naturally with on_complete_prompt."""

    prompt: str
    silence_ms: int = 0
    skill: str | None = None
    effect_id: str | None = None


@dataclass(frozen=True, slots=True)
class ToolsChanged:
    tools: Mapping[str, str]  # tool name -> skill


# -- replies to the coordinator's own requests -------------------------------------------
@dataclass(frozen=True, slots=True)
class InterruptDone:
    token: int
    ended_claim: bool = False
    claim_age_ms: int | None = None
    ignored: bool = False  # a claim started within claim_grace_ms: focus changed nothing


@dataclass(frozen=True, slots=True)
class InterruptFailed:
    token: int
    message: str


@dataclass(frozen=True, slots=True)
class DialogAcquired:
    turn_id: str
    activity_id: str


@dataclass(frozen=True, slots=True)
class DialogAcquireFailed:
    turn_id: str
    message: str


@dataclass(frozen=True, slots=True)
class AudioCleared:
    token: int
    ok: bool = True
    played: Mapping[str, float] = field(default_factory=dict)  # stream -> ms really played (AUDIO-5)


@dataclass(frozen=True, slots=True)
class TurnEndDone:
    turn_id: str
    outcome: str = "idle"
    ok: bool = True


@dataclass(frozen=True, slots=True)
class ToolDone:
    call_id: str
    reply: ToolReply


@dataclass(frozen=True, slots=True)
class ToolFailed:
    call_id: str
    code: str  # a huxley_wire ErrorCode value (tool_failed, timeout, unavailable, ...)
    message: str


# -- from the model ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ModelConnected:
    pass


@dataclass(frozen=True, slots=True)
class ModelDisconnected:
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ResponseCreated:
    response_id: str


@dataclass(frozen=True, slots=True)
class AudioDelta:
    response_id: str
    item_id: str
    pcm: bytes


@dataclass(frozen=True, slots=True)
class AssistantTranscript:
    response_id: str
    item_id: str
    text: str


@dataclass(frozen=True, slots=True)
class AssistantTranscriptDelta:
    response_id: str
    item_id: str
    delta: str


@dataclass(frozen=True, slots=True)
class UserTranscript:
    item_id: str
    text: str


@dataclass(frozen=True, slots=True)
class FunctionCall:
    response_id: str
    item_id: str
    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ResponseDone:
    response_id: str
    status: str  # completed, cancelled, failed, incomplete
    usage: Mapping[str, Any] | None = None
    error: str | None = None  # why it failed, when the model said


@dataclass(frozen=True, slots=True)
class ModelError:
    message: str
    code: str | None = None
    event_id: str | None = None  # the client event that failed
    kind: str | None = None  # the error's type: invalid_request_error, server_error, ...


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed (pacing, drain deadlines)."""


Event = (
    PttStart
    | PttStop
    | MicAudio
    | Played
    | ActivityChanged
    | RunInjectRequested
    | CompletionRequested
    | ToolsChanged
    | InterruptDone
    | InterruptFailed
    | DialogAcquired
    | DialogAcquireFailed
    | AudioCleared
    | TurnEndDone
    | ToolDone
    | ToolFailed
    | ModelConnected
    | ModelDisconnected
    | ResponseCreated
    | AudioDelta
    | AssistantTranscript
    | AssistantTranscriptDelta
    | UserTranscript
    | FunctionCall
    | ResponseDone
    | ModelError
    | Tick
)
