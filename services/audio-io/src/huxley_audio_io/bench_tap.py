"""A bench-only stamp of audio as it enters audio-io (bench/bench_paths.py).

With HUXLEY_AUDIO_BENCH_TAP=<file>, every output frame that entered the
mixer and every mic chunk the edge took in appends one line to the file:
`<out|mic> <CLOCK_MONOTONIC ns> <hex of the first PCM bytes>`. The bench
writes a send stamp and a sequence number into those bytes, and
CLOCK_MONOTONIC is system-wide on Linux, so it reads one-way latencies
across processes. Unset (always, outside the bench), nothing is installed:
the service's tap lists stay empty.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from huxley_wire.audio import AudioFrame

if TYPE_CHECKING:
    from huxley_audio_io.service import AudioService

ENV = "HUXLEY_AUDIO_BENCH_TAP"
STAMP_BYTES = 13  # bench/transport_peers.py's HEADER: send time (ns), sequence, flags


class StampFile:
    """One unbuffered write per stamp: nothing is lost when the service is killed."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def write(self, kind: str, pcm: bytes) -> None:
        now = time.monotonic_ns()  # first: what follows is not part of the latency
        os.write(self.fd, f"{kind} {now} {pcm[:STAMP_BYTES].hex()}\n".encode())

    def frame(self, frame: AudioFrame) -> None:
        self.write("out", frame.pcm)

    def mic(self, pcm: bytes) -> None:
        self.write("mic", pcm)


def install_from_env(service: AudioService) -> StampFile | None:
    path = os.environ.get(ENV)
    if not path:
        return None
    stamps = StampFile(path)
    service.intake_taps.append(stamps.frame)
    service.mic_taps.append(stamps.mic)
    return stamps
