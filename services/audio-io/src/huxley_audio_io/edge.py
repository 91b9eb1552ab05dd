"""The edge: push-to-talk presses and where microphone audio goes. Pure.

One press at a time, whatever its source. A press within `guard_ms` of a
claim taking the floor is ignored entirely (the reference's rule: the user
was pressing to answer before the call even connected).

Mic audio goes to the assistant while a press is held, else to the claim
that holds COMMS in the foreground, else nowhere. It is cut into 20 ms
frames; each press and each claim is a stream of its own (stream id = the
press id or the claim's activity id, seq from 0).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from enum import StrEnum

from huxley_wire.audio import BYTES_PER_MS, FRAME_BYTES, AudioFrame


class Route(StrEnum):
    ASSISTANT = "assistant"
    CLAIM = "claim"


@dataclass
class Press:
    press_id: str
    source: str
    muted: list[str] = field(default_factory=list)  # streams held at the edge by this press


class PttEdge:
    def __init__(self, guard_ms: float = 300.0) -> None:
        self.guard_ms = guard_ms
        self.held: Press | None = None

    def press(self, source: str, claim_age_ms: float | None) -> Press | None:
        """A button went down. None: ignored (one is already held, or a claim
        started less than guard_ms ago)."""
        if self.held is not None:
            return None
        if claim_age_ms is not None and claim_age_ms < self.guard_ms:
            return None
        self.held = Press(press_id=f"p-{secrets.token_hex(4)}", source=source)
        return self.held

    def release(self, source: str | None = None) -> Press | None:
        """The button went up. None: nothing was held (or another source holds it)."""
        press = self.held
        if press is None or (source is not None and press.source != source):
            return None
        self.held = None
        return press


class MicFramer:
    """Cuts mic audio arriving in chunks of any size into 20 ms frames of one
    stream. `ts_us` of a frame is the capture time of its first sample,
    reckoned back from the arrival time of the chunk's last sample."""

    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id
        self.seq = 0
        self._pending = bytearray()

    def feed(self, pcm: bytes, arrived_us: int) -> list[AudioFrame]:
        self._pending += pcm
        frames = []
        while len(self._pending) >= FRAME_BYTES:
            frames.append(self._frame(bytes(self._pending[:FRAME_BYTES]), arrived_us))
            del self._pending[:FRAME_BYTES]
        return frames

    def flush(self, arrived_us: int) -> list[AudioFrame]:
        """The partial frame left at the end of a press (shorter than 20 ms)."""
        if not self._pending:
            return []
        frame = self._frame(bytes(self._pending), arrived_us)
        self._pending.clear()
        return [frame]

    def _frame(self, pcm: bytes, arrived_us: int) -> AudioFrame:
        behind_ms = (len(self._pending)) / BYTES_PER_MS  # audio from this frame's start to now
        frame = AudioFrame(
            stream=self.stream_id, seq=self.seq, ts_us=arrived_us - int(behind_ms * 1000), pcm=pcm
        )
        self.seq += 1
        return frame


def mic_route(press: Press | None, claim_id: str | None) -> tuple[Route, str] | None:
    """Where mic audio goes now: (route, stream id), or None to drop it."""
    if press is not None:
        return Route.ASSISTANT, press.press_id
    if claim_id is not None:
        return Route.CLAIM, claim_id
    return None
