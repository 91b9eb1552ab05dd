"""A small FIFO of samples per output stream, with bounded depth.

Producers pace in real time with up to ~200 ms of lead, so the buffer only
absorbs bus jitter. It starts a stream once `prebuffer` samples are queued
(or the producer said it has nothing more), and never lets latency grow past
`max_samples`: beyond it the oldest audio is dropped and counted.

It keeps the PCM16 bytes as they came off the bus (one bytearray, no object
per frame): the mixer converts a whole block of every stream at once.
"""

from __future__ import annotations

from huxley_wire.audio import SAMPLE_WIDTH


class JitterBuffer:
    __slots__ = ("_pcm", "dropped", "max_samples", "prebuffer", "primed")

    def __init__(self, prebuffer: int, max_samples: int) -> None:
        self.prebuffer = prebuffer
        self.max_samples = max_samples
        self._pcm = bytearray()
        self.primed = False
        self.dropped = 0  # samples lost to overflow

    def __len__(self) -> int:
        return len(self._pcm) // SAMPLE_WIDTH

    def push(self, pcm: bytes) -> int:
        """Queue PCM16 samples; returns how many old samples overflow dropped."""
        self._pcm += pcm
        over = len(self) - self.max_samples
        if over > 0:
            del self._pcm[: over * SAMPLE_WIDTH]
            self.dropped += over
            return over
        return 0

    def ready(self, final: bool) -> bool:
        """True when playing may start (or go on): primed, or the end is known."""
        if not self.primed:
            size = len(self)
            if size >= self.prebuffer or (final and size):
                self.primed = True
        return self.primed

    def pop(self, count: int) -> bytes:
        """Up to `count` samples (PCM16 bytes) from the front. Running dry
        un-primes the buffer, so after an underrun it waits for the prebuffer again."""
        cut = count * SAMPLE_WIDTH
        out = bytes(self._pcm[:cut])
        del self._pcm[:cut]
        if not self._pcm:
            self.primed = False
        return out

    def clear(self) -> int:
        dropped = len(self)
        self._pcm.clear()
        self.primed = False
        return dropped
