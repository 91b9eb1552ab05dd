"""What the turn coordinator asks the outside world to do. The bus adapter
executes them in order; a command that is a request (`Interrupt`,
`AcquireDialog`, `ClearAudio`, `EndTurn`, `CallTool`) has its reply fed
back as an event (see huxley_bridge.events)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from huxley_wire.codec import Message
from huxley_wire.messages.focus import ActivityMeta, Channel, PendingEffect


@dataclass(frozen=True, slots=True)
class SendModel:
    """A client event for the Realtime socket."""

    event: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AppendAudio:
    """input_audio_buffer.append of this PCM (the wrapper base64-encodes it)."""

    pcm: bytes


@dataclass(frozen=True, slots=True)
class PublishAudio:
    """An output frame on audio.out.bridge.<stream_id> (the adapter stamps ts_us)."""

    stream_id: str
    seq: int
    pcm: bytes
    eos: bool = False


@dataclass(frozen=True, slots=True)
class Interrupt:
    """focus `interrupt` (user PTT); reply -> InterruptDone / InterruptFailed."""

    token: int
    claim_grace_ms: int = 300  # focus ignores the PTT if a claim started this recently


@dataclass(frozen=True, slots=True)
class AcquireDialog:
    """focus `acquire` of DIALOG for a turn; reply -> DialogAcquired / DialogAcquireFailed."""

    turn_id: str
    interface: str
    meta: ActivityMeta


@dataclass(frozen=True, slots=True)
class ReleaseActivity:
    """focus `release` of an activity the coordinator no longer wants (no reply needed)."""

    activity_id: str


@dataclass(frozen=True, slots=True)
class EndTurn:
    """focus `turn_end` (the barrier); reply -> TurnEndDone."""

    turn_id: str
    activity_id: str
    inject_id: str | None
    pending: PendingEffect | None


@dataclass(frozen=True, slots=True)
class StopChannel:
    """focus `stop_channel` (CancelMedia stops content)."""

    channel: Channel


@dataclass(frozen=True, slots=True)
class ClearAudio:
    """audio-io `clear` (audio_clear); reply -> AudioCleared."""

    token: int
    stream_id: str | None = None


@dataclass(frozen=True, slots=True)
class SetVolume:
    level: int


@dataclass(frozen=True, slots=True)
class CallTool:
    """skills.tool.<skill> `call`; reply -> ToolDone / ToolFailed (the adapter
    turns a missing reply after `timeout_s` into ToolFailed(timeout))."""

    call_id: str
    skill: str
    tool: str
    args: dict[str, Any]
    turn_id: str
    timeout_s: float


@dataclass(frozen=True, slots=True)
class DiscardEffect:
    """skills.host.<host> `discard`: a held stream or claim will never start."""

    host: str
    effect_id: str
    reason: Literal["user_ptt", "superseded", "preempted", "error"]


@dataclass(frozen=True, slots=True)
class Publish:
    """An event on bridge.event.<kind>."""

    kind: str
    message: Message


@dataclass(frozen=True, slots=True)
class InjectReply:
    """The reply to run_inject."""

    inject_id: str
    # unavailable: the model is out of reach, the turn was not taken (focus re-queues it)
    status: Literal["accepted", "already_running", "already_done", "unavailable"]


Command = (
    SendModel
    | AppendAudio
    | PublishAudio
    | Interrupt
    | AcquireDialog
    | ReleaseActivity
    | EndTurn
    | StopChannel
    | ClearAudio
    | SetVolume
    | CallTool
    | DiscardEffect
    | Publish
    | InjectReply
)
