"""Turning a skill's PCM into 20 ms frames sent in real time: the chunker
and the pacer are pure; `send_paced` is their loop, with the clock, the
sleep and the send handed in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from huxley_wire.audio import BYTES_PER_MS, FRAME_BYTES, MAX_FRAME_PCM


class FrameChunker:
    """Any chunk sizes in, whole 960-byte frames out; `flush()` returns the
    rest (even length) at the end of a stream."""

    def __init__(self, frame_bytes: int = FRAME_BYTES) -> None:
        self.frame_bytes = frame_bytes
        self._buffer = bytearray()

    def push(self, chunk: bytes) -> list[bytes]:
        self._buffer += chunk
        whole = len(self._buffer) - len(self._buffer) % self.frame_bytes
        frames = [bytes(self._buffer[i : i + self.frame_bytes]) for i in range(0, whole, self.frame_bytes)]
        del self._buffer[:whole]
        return frames

    def flush(self) -> bytes:
        rest = bytes(self._buffer[: len(self._buffer) - len(self._buffer) % 2])
        self._buffer.clear()
        return rest


class Pacer:
    """Real-time pacing with a small lead: frame n may be sent `lead_ms` before
    its play time (started + n * 20 ms), never earlier."""

    def __init__(self, started: float, lead_ms: int) -> None:
        self.started = started
        self.lead_s = lead_ms / 1000
        self.sent_ms = 0.0

    def delay_s(self, now: float) -> float:
        """How long to wait before sending the next frame."""
        due = self.started + self.sent_ms / 1000 - self.lead_s
        return max(0.0, due - now)

    def sent(self, pcm_bytes: int) -> None:
        self.sent_ms += pcm_bytes / BYTES_PER_MS

    def take(self, frames: list[bytes], now: float, limit: int = MAX_FRAME_PCM) -> int:
        """How many of `frames` go in the next message, counted as sent: the
        first (the caller waited for it) and each next one already due by
        `now`, up to `limit` bytes. Frames due together travel as one message,
        so a burst's last frame is not queued behind the others (PERF-16)."""
        taken = size = 0
        for pcm in frames:
            if taken and (self.delay_s(now) > 0 or size + len(pcm) > limit):
                break
            self.sent(len(pcm))
            size += len(pcm)
            taken += 1
        return taken


async def send_paced(
    frames: list[bytes],
    pacer: Pacer,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[Any]],
    send: Callable[[bytes], Awaitable[None]],
    before_send: Callable[[], None] = lambda: None,
) -> None:
    """`frames` out as the pacer allows, the frames due together as one
    message. `before_send` runs after each wait: it may raise to stop here
    (a stream paused while this slept sends nothing more)."""
    while frames:
        delay = pacer.delay_s(clock())
        if delay > 0:
            await sleep(delay)
        before_send()
        taken = pacer.take(frames, clock())
        await send(b"".join(frames[:taken]))
        frames = frames[taken:]
