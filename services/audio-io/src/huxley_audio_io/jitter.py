"""A small FIFO of samples per output stream, with bounded depth.

Producers pace in real time with up to ~200 ms of lead, so the buffer only
absorbs bus jitter. It starts a stream once `prebuffer` samples are queued
(or the producer said it has nothing more), and never lets latency grow past
`max_samples`: beyond it the oldest audio is dropped and counted.
"""

from __future__ import annotations

from collections import deque

import numpy as np


class JitterBuffer:
    def __init__(self, prebuffer: int, max_samples: int) -> None:
        self.prebuffer = prebuffer
        self.max_samples = max_samples
        self._chunks: deque[np.ndarray] = deque()
        self._size = 0
        self.primed = False
        self.dropped = 0  # samples lost to overflow

    def __len__(self) -> int:
        return self._size

    def push(self, samples: np.ndarray) -> int:
        """Queue samples; returns how many old samples overflow dropped."""
        if samples.size:
            self._chunks.append(samples)
            self._size += samples.size
        over = self._size - self.max_samples
        if over > 0:
            self.pop(over)
            self.dropped += over
            return over
        return 0

    def ready(self, final: bool) -> bool:
        """True when playing may start (or go on): primed, or the end is known."""
        if not self.primed and (self._size >= self.prebuffer or (final and self._size)):
            self.primed = True
        return self.primed

    def pop(self, count: int) -> np.ndarray:
        """Up to `count` samples from the front. Running dry un-primes the
        buffer, so after an underrun it waits for the prebuffer again."""
        parts: list[np.ndarray] = []
        wanted = count
        while wanted and self._chunks:
            head = self._chunks[0]
            if head.size <= wanted:
                parts.append(self._chunks.popleft())
                wanted -= head.size
            else:
                parts.append(head[:wanted])
                self._chunks[0] = head[wanted:]
                wanted = 0
        got = count - wanted
        self._size -= got
        if not self._size:
            self.primed = False
        if not parts:
            return np.zeros(0, dtype=np.float32)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def clear(self) -> int:
        dropped = self._size
        self._chunks.clear()
        self._size = 0
        self.primed = False
        return dropped
