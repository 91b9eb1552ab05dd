"""Audio-io messages (control only; frames use huxley_wire.audio).

Subjects:
  audio.rpc             Clear, SetVolume, AudioSnapshotRequest
  audio.mic.assistant   mic frames while PTT is held (to the model)
  audio.mic.claim       mic frames while a claim holds COMMS (to the skill)
  audio.out.<stream>    output frames; <stream> is the focus activity id
  audio.ptt             PttEvent (published after the edge silenced content)
  audio.played          PlayedEvent, per stream, while playing and when drained
  audio.event.client    ClientConnection (web client connected / evicted / gone)
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from huxley_wire.codec import Message, Request


class Clear(Request):
    """audio_clear: drop what is buffered for one stream (or all) at once."""

    op = "clear"
    stream_id: str | None = None


class SetVolume(Request):
    op = "set_volume"
    level: int = Field(ge=0, le=100)


class AudioSnapshotRequest(Request):
    op = "snapshot"


class StreamView(Message):
    stream_id: str
    gain: float
    buffered_ms: float
    played_ms: float
    state: str


class AudioSnapshot(Message):
    backend: str
    volume: int
    streams: list[StreamView]
    client_connected: bool = False


class PttEvent(Message):
    action: Literal["start", "stop"]
    press_id: str
    ts_us: int  # when the button went down / up at the edge
    source: Literal["web", "keyboard", "wake_word", "test"] = "web"


class PlayedEvent(Message):
    stream_id: str
    played_ms: float  # audio of this stream really sent to the speaker
    drained: bool = False  # the end-of-stream frame has been played out


class ClientConnection(Message):
    connected: bool
    client_id: str
    reason: str = ""
