"""A bench-only stamp of audio as it enters audio-io (bench/bench_paths.py).

With HUXLEY_AUDIO_BENCH_TAP=<file>, each 20 ms frame of the output that
entered the mixer (`out`; one message may join several) and every mic
chunk the edge took in (`mic`) appends one line to the file
(huxley_runtime.bench_stamps). Unset (always, outside the bench), nothing
is installed: the service's tap lists stay empty.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from huxley_runtime.bench_stamps import StampFile, from_env

if TYPE_CHECKING:
    from huxley_audio_io.service import AudioService

ENV = "HUXLEY_AUDIO_BENCH_TAP"


def install_from_env(service: AudioService) -> StampFile | None:
    stamps = from_env(ENV)
    if stamps is None:
        return None
    # The time first: writing the line is not part of the latency.
    service.intake_taps.append(lambda frame: stamps.frames("out", time.monotonic_ns(), frame.pcm))
    service.mic_taps.append(lambda pcm: stamps.stamp("mic", time.monotonic_ns(), pcm))
    return stamps
