"""A bench-only stamp of audio where the bridge meets the model's socket
(bench/bench_paths.py), so the bench can tell our path from the socket's hop.

With HUXLEY_BRIDGE_BENCH_TAP=<file>, each mic frame appended to the model
(`append`, once the socket took it) and each 20 ms frame of an audio delta
(`delta`, as the bridge takes the event from the client) appends one line
to the file (huxley_runtime.bench_stamps). Unset (always, outside the
bench), the model session holds None and does nothing more than test for it.
"""

from __future__ import annotations

import base64
import binascii

from huxley_runtime.bench_stamps import StampFile, from_env

ENV = "HUXLEY_BRIDGE_BENCH_TAP"


def stamps_from_env() -> StampFile | None:
    return from_env(ENV)


def delta(stamps: StampFile, at_ns: int, delta_b64: str) -> None:
    """The frames of a delta; one that is not base64 is left to the client's parse."""
    try:
        pcm = base64.b64decode(delta_b64)
    except (binascii.Error, ValueError):
        return
    stamps.frames("delta", at_ns, pcm)
