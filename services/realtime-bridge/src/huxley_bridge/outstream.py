"""A turn's output stream: the model's audio cut into 20 ms frames, released
in real time with a small lead, and a map of where each assistant item's
audio sits in the stream (for truncation at what was really played).
Frames released together go onto the bus joined, as one message (`joined`).

Pure: the caller passes `now` (monotonic seconds).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from huxley_wire.audio import BYTES_PER_MS, FRAME_BYTES, MAX_FRAME_PCM


@dataclass(frozen=True, slots=True)
class Frame:
    seq: int
    pcm: bytes
    eos: bool


def joined(frames: list[Frame], limit: int = MAX_FRAME_PCM) -> list[Frame]:
    """Consecutive frames as few messages of at most `limit` bytes: a 100 ms
    delta released at once is one publish and one intake, not five, so its
    last frame is not queued behind four others. A message keeps its first
    frame's seq (its place in the stream) and its last frame's end-of-stream."""
    out: list[Frame] = []
    for frame in frames:
        last = out[-1] if out else None
        if last is not None and not last.eos and len(last.pcm) + len(frame.pcm) <= limit:
            out[-1] = Frame(last.seq, last.pcm + frame.pcm, frame.eos)
        else:
            out.append(frame)
    return out


@dataclass(slots=True)
class ItemSpan:
    start_ms: float
    end_ms: float


class OutputStream:
    def __init__(self, lead_ms: float = 200.0) -> None:
        self.lead_s = lead_ms / 1000
        self._partial = bytearray()
        self._ready: deque[tuple[bytes, bool]] = deque()
        self.written_ms = 0.0  # audio written so far (released or not)
        self.released_ms = 0.0  # audio handed out for publishing
        self._clock: float | None = None  # when stream position 0 plays
        self._starved = True  # everything written was released: new audio restarts the clock
        self._seq = 0
        self.items: dict[str, ItemSpan] = {}
        self.cut: set[str] = set()  # items truncated at the played point even if all we got was played
        self.ended = False
        self.eos_released = False

    @property
    def has_audio(self) -> bool:
        return self.written_ms > 0

    def write(self, pcm: bytes, item_id: str | None = None) -> None:
        if self.ended or not pcm:
            return
        start = self.written_ms
        self.written_ms += len(pcm) / BYTES_PER_MS
        if item_id is not None:
            self.items.setdefault(item_id, ItemSpan(start, start)).end_ms = self.written_ms
        self._partial += pcm
        while len(self._partial) >= FRAME_BYTES:
            self._ready.append((bytes(self._partial[:FRAME_BYTES]), False))
            del self._partial[:FRAME_BYTES]

    def end(self) -> None:
        """Nothing more comes: the last (possibly short) frame carries end-of-stream."""
        if self.ended:
            return
        self.ended = True
        tail = bytes(self._partial[: len(self._partial) - len(self._partial) % 2])
        self._partial.clear()
        if tail:
            self._ready.append((tail, True))
        elif self._ready:
            pcm, _ = self._ready.pop()
            self._ready.append((pcm, True))
        else:
            self._ready.append((b"", True))

    def abort(self) -> None:
        """Drop everything not yet released; nothing more will be released."""
        self._ready.clear()
        self._partial.clear()
        self.ended = True
        self.eos_released = True

    def release(self, now: float) -> list[Frame]:
        """The frames due by `now`: each one once its start is within the lead."""
        if not self._ready:
            return []
        if self._starved:
            played_up_to = None if self._clock is None else self._clock + self.released_ms / 1000
            if played_up_to is None or played_up_to < now:  # the speaker ran dry: restart the clock
                self._clock = now - self.released_ms / 1000
        assert self._clock is not None
        frames = []
        while self._ready and self._clock + self.released_ms / 1000 <= now + self.lead_s + 1e-9:
            pcm, eos = self._ready.popleft()
            frames.append(Frame(self._seq, pcm, eos))
            self._seq += 1
            self.released_ms += len(pcm) / BYTES_PER_MS
            self.eos_released = self.eos_released or eos
        # Waiting on the producer (not on the clock): the next audio restarts pacing.
        self._starved = not self._ready
        return frames

    def next_release_at(self) -> float | None:
        if not self._ready:
            return None
        if self._clock is None:
            return float("-inf")  # due now
        return self._clock + self.released_ms / 1000 - self.lead_s

    def expected_end(self, now: float) -> float:
        """When the audio released so far should have played out."""
        if self._clock is None:
            return now
        return max(now, self._clock + self.released_ms / 1000)

    def mark_cut(self, item_id: str) -> None:
        """The model has more of this item than we kept (its response was cancelled
        under it, or its audio came after the press): truncate it whatever was played."""
        self.cut.add(item_id)
        self.items.setdefault(item_id, ItemSpan(self.written_ms, self.written_ms))

    def truncations(self, played_ms: float) -> list[tuple[str, int]]:
        """(item_id, audio_end_ms) for every item not fully heard or marked cut:
        cut at the played position (0 for items that never started playing)."""
        cuts = []
        for item_id, span in self.items.items():
            if span.end_ms > played_ms + 0.5 or item_id in self.cut:
                heard = min(span.end_ms, max(span.start_ms, played_ms)) - span.start_ms
                cuts.append((item_id, int(heard)))
        return cuts
