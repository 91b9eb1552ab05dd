"""Bench-only stamps of audio as it passes a service (bench/bench_paths.py).

A service whose bench variable names a file appends one line per stamp:
`<kind> <CLOCK_MONOTONIC ns> <hex of the frame's first bytes>`. The bench
writes a send stamp and a sequence number into those bytes, and
CLOCK_MONOTONIC is system-wide on Linux, so the lines of several processes
read as one-way latencies. Unset (always, outside the bench), a service
installs nothing.
"""

from __future__ import annotations

import os

from huxley_wire.audio import FRAME_BYTES

STAMP_BYTES = 13  # bench/transport_peers.py's HEADER: send time (ns), sequence, flags


class StampFile:
    """One unbuffered write per stamp: nothing is lost when the service is killed."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def stamp(self, kind: str, at_ns: int, pcm: bytes) -> None:
        """One line for `pcm`, by its first bytes."""
        os.write(self.fd, f"{kind} {at_ns} {pcm[:STAMP_BYTES].hex()}\n".encode())

    def frames(self, kind: str, at_ns: int, pcm: bytes) -> None:
        """One line for each 20 ms frame `pcm` joins (a model delta, a joined append)."""
        starts = range(0, len(pcm), FRAME_BYTES)
        lines = (f"{kind} {at_ns} {pcm[i : i + STAMP_BYTES].hex()}\n" for i in starts)
        os.write(self.fd, "".join(lines).encode())


def from_env(variable: str) -> StampFile | None:
    path = os.environ.get(variable)
    return StampFile(path) if path else None
