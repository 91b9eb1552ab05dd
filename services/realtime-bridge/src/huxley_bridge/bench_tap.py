"""A bench-only stamp of audio where the bridge meets the model's socket
(bench/bench_paths.py), so the bench can tell our path from the socket's hop.

With HUXLEY_BRIDGE_BENCH_TAP=<file>, each mic frame appended to the model
(once the socket took it) and each 20 ms frame of an audio delta (as the
bridge takes the event from the client) appends one line to the file:
`<append|delta> <CLOCK_MONOTONIC ns> <hex of the frame's first bytes>`, the
same lines as audio-io's bench tap. Unset (always, outside the bench), the
model session holds None and does nothing more than test for it.
"""

from __future__ import annotations

import base64
import binascii
import os

from huxley_wire.audio import FRAME_BYTES

ENV = "HUXLEY_BRIDGE_BENCH_TAP"
STAMP_BYTES = 13  # bench/transport_peers.py's HEADER: send time (ns), sequence, flags


class StampFile:
    """One unbuffered write per stamp: nothing is lost when the service is killed."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def append(self, at_ns: int, pcm: bytes) -> None:
        self._frames("append", at_ns, pcm)  # an append may join several frames (mic_run)

    def delta(self, at_ns: int, delta_b64: str) -> None:
        try:
            pcm = base64.b64decode(delta_b64)
        except (binascii.Error, ValueError):
            return
        self._frames("delta", at_ns, pcm)

    def _frames(self, kind: str, at_ns: int, pcm: bytes) -> None:
        starts = range(0, len(pcm), FRAME_BYTES)
        lines = (f"{kind} {at_ns} {pcm[i : i + STAMP_BYTES].hex()}\n" for i in starts)
        os.write(self.fd, "".join(lines).encode())


def from_env() -> StampFile | None:
    path = os.environ.get(ENV)
    return StampFile(path) if path else None
