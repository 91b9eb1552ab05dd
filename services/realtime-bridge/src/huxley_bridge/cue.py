"""The "still trying to reach the model" cue: two soft falling notes, PCM16
24 kHz mono, played from the 4th reconnect attempt on."""

from __future__ import annotations

import math
from array import array

from huxley_wire.audio import SAMPLE_RATE


def _note(hz: float, ms: int, amplitude: float) -> array[int]:
    n = SAMPLE_RATE * ms // 1000
    fade = SAMPLE_RATE * 10 // 1000  # 10 ms ramps: no clicks
    out = array("h")
    for i in range(n):
        envelope = min(1.0, i / fade, (n - 1 - i) / fade)
        out.append(int(amplitude * envelope * 32767 * math.sin(2 * math.pi * hz * i / SAMPLE_RATE)))
    return out


def reconnect_cue(amplitude: float = 0.2) -> bytes:
    pcm = (
        _note(659.25, 140, amplitude)
        + array("h", bytes(SAMPLE_RATE * 60 // 1000 * 2))
        + _note(523.25, 220, amplitude)
    )
    return pcm.tobytes()
