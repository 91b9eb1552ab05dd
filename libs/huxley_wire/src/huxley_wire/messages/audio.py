"""Audio-io messages (control only; frames use huxley_wire.audio).

Subjects:
  audio.rpc             Clear -> Cleared, SetVolume -> Ok, AudioSnapshotRequest -> AudioSnapshot
  audio.mic.assistant   mic frames while PTT is held (to the model); stream = the press id
  audio.mic.claim       mic frames while a claim holds COMMS (to the skill); stream = the claim's activity id
  audio.out.<stream>    output frames; <stream> is the focus activity id
  audio.ptt             PttEvent (published after the edge silenced content)
  audio.played          PlayedBatch every ~100 ms (how far each playing stream got), and a
                        PlayedEvent per stream when it drained or was cleared
  audio.event.client    ClientConnection (web client connected / evicted / gone)
  audio.event.control   ClientControl (wake_word, reset, set_language from the client)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field

from huxley_wire.codec import SCHEMA_VERSION, Message, Ok, Request, decode_object, encode_obj, validate

# Streams per PlayedBatch: ~25 bytes each, far below the control message limit.
PLAYED_BATCH_MAX = 2000


class Cleared(Ok):
    """The reply to `clear`: how much of each cleared stream was really played
    (what the bridge truncates the assistant item to)."""

    played: dict[str, float] = Field(default_factory=dict)  # stream id -> played ms


class Clear(Request[Cleared]):
    """audio_clear: drop what is buffered for one stream (or all) at once."""

    op = "clear"
    stream_id: str | None = None


class SetVolume(Request[Ok]):
    op = "set_volume"
    level: int = Field(ge=0, le=100)


class StreamView(Message):
    stream_id: str
    gain: float
    buffered_ms: float
    played_ms: float
    state: str  # playing, ducked, paused, muted (PTT at the edge), waiting_grant, idle


class AudioSnapshot(Message):
    backend: str
    volume: int
    streams: list[StreamView]
    client_connected: bool = False


class AudioSnapshotRequest(Request[AudioSnapshot]):
    op = "snapshot"


class PttEvent(Message):
    """A push-to-talk press at the edge. Mic frames of the press travel on
    audio.mic.assistant with stream = press_id and seq 0..frames-1; `stop`
    says how many there were, so a subscriber can wait for the last one."""

    action: Literal["start", "stop"]
    press_id: str
    ts_us: int  # when the button went down / up at the edge
    source: Literal["web", "keyboard", "wake_word", "file", "test"] = "web"
    frames: int | None = None  # on stop: mic frames published for this press


class PlayedEvent(Message):
    stream_id: str
    played_ms: float  # audio of this stream really sent to the speaker, since its first frame
    drained: bool = False  # nothing more of it will play: its end-of-stream frame was played out (or cleared)
    cleared: bool = False  # its unplayed audio was dropped (audio_clear, or focus ended the activity)


def encode_played(stream_id: str, played_ms: float, *, drained: bool = False, cleared: bool = False) -> bytes:
    """The bytes of `encode(PlayedEvent(...))` without building the model."""
    return encode_obj(
        {
            "v": SCHEMA_VERSION,
            "stream_id": stream_id,
            "played_ms": float(played_ms),
            "drained": drained,
            "cleared": cleared,
        }
    )


class PlayedBatch(Message):
    """How far each stream that played since the last batch got, in one
    message: audio-io sends one every ~100 ms instead of a PlayedEvent per
    playing stream (5,000 messages/s at 500 streams). A stream's end still
    comes as its own PlayedEvent (`drained`), after its last batch entry."""

    played: dict[str, float]  # stream id -> played ms


def encode_played_batch(played: Mapping[str, float]) -> bytes:
    """The bytes of `encode(PlayedBatch(played=...))` without building the model."""
    return encode_obj({"v": SCHEMA_VERSION, "played": {k: float(v) for k, v in played.items()}})


def decode_played(data: bytes, *, ends_only: bool = False) -> list[PlayedEvent]:
    """Either message of audio.played, as PlayedEvents (a batch's entries
    are neither drained nor cleared; `ends_only` skips them). Raises
    WireError on anything else."""
    obj = decode_object(data)
    if "stream_id" not in obj and "played" in obj:
        batch = validate(obj, PlayedBatch)
        if ends_only:
            return []
        return [PlayedEvent(stream_id=sid, played_ms=ms) for sid, ms in batch.played.items()]
    return [validate(obj, PlayedEvent)]


class ClientConnection(Message):
    connected: bool
    client_id: str
    reason: str = ""  # on disconnect: closed, evicted, error


class ClientControl(Message):
    """Session controls a client sends (reference protocol); the bridge acts on them."""

    action: Literal["wake_word", "reset", "set_language", "set_persona"]
    language: str | None = None  # set_language: the language code, None for the persona's default
    # set_persona: the persona the client asked for (`?persona=`); the bridge
    # serves it if it is configured for it, else says why not in a status.
    persona: str | None = None
    client_id: str = ""
