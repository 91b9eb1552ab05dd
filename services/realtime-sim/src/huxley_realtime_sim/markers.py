"""DTMF markers: how test audio tells the simulator what the "user said".

A marker is a string of DTMF keys (0-9, A-D, *, #). Each key is a dual tone
(one low-group and one high-group frequency) lasting `TONE_MS`, followed by
`GAP_MS` of silence, so two equal keys in a row stay distinct.

Detection looks at the whole committed input buffer, not at the frames it
arrived in, so any framing (20 ms or otherwise) gives the same answer. It
slides a 40 ms Hann window in 20 ms hops, measures each DTMF frequency with a
single DFT bin (Goertzel), and accepts a window when one low and one high tone
carry most of its energy. A key counts once it holds for two windows in a row.
"""

from __future__ import annotations

import math

import numpy as np

SAMPLE_RATE = 24_000
TONE_MS = 80
GAP_MS = 60
LEAD_MS = 60
AMPLITUDE = 0.35  # of full scale, per tone

LOW_HZ = (697.0, 770.0, 852.0, 941.0)
HIGH_HZ = (1209.0, 1336.0, 1477.0, 1633.0)
KEYS = ("123A", "456B", "789C", "*0#D")  # rows: low tones; columns: high tones

_KEY_TONES: dict[str, tuple[float, float]] = {
    key: (LOW_HZ[row], HIGH_HZ[col]) for row, keys in enumerate(KEYS) for col, key in enumerate(keys)
}

WINDOW = SAMPLE_RATE * 40 // 1000  # 960 samples
HOP = SAMPLE_RATE * 20 // 1000  # 480 samples
MIN_RMS = 300.0  # quieter windows are silence
MIN_SHARE = 0.2  # each tone's share of the window's power
MIN_PAIR_SHARE = 0.6  # both tones together
MAX_RIVAL_SHARE = 0.1  # the other tones of each group
MIN_RUN = 2  # windows a key must hold


def valid_marker(marker: str) -> bool:
    return bool(marker) and all(key in _KEY_TONES for key in marker)


def marker_pcm(marker: str, *, lead_ms: int = LEAD_MS, tail_ms: int = GAP_MS) -> bytes:
    """PCM16 24 kHz mono for `marker`, with silence before and after."""
    if not valid_marker(marker):
        raise ValueError(f"not a DTMF marker: {marker!r} (keys: 0-9, A-D, *, #)")
    tone_n = SAMPLE_RATE * TONE_MS // 1000
    gap_n = SAMPLE_RATE * GAP_MS // 1000
    t = np.arange(tone_n) / SAMPLE_RATE
    parts = [np.zeros(SAMPLE_RATE * lead_ms // 1000)]
    for key in marker:
        low, high = _KEY_TONES[key]
        tone = AMPLITUDE * (np.sin(2 * math.pi * low * t) + np.sin(2 * math.pi * high * t))
        parts += [tone, np.zeros(gap_n)]
    parts.append(np.zeros(max(0, SAMPLE_RATE * tail_ms // 1000 - gap_n)))
    signal = np.concatenate(parts)
    return (np.clip(signal, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def _probes() -> np.ndarray:
    """Hann-weighted cosines and sines (rows) for the eight DTMF frequencies."""
    n = np.arange(WINDOW)
    hann = np.hanning(WINDOW)
    phase = 2 * math.pi * np.array(LOW_HZ + HIGH_HZ)[:, None] * n[None, :] / SAMPLE_RATE
    return np.concatenate([hann * np.cos(phase), hann * np.sin(phase)])


_PROBES = _probes()
# A pure tone of amplitude A gives |X| = A * sum(hann) / 2 at its own bin.
_BIN_GAIN = float(np.hanning(WINDOW).sum() / 2)


def _window_powers(windows: np.ndarray) -> np.ndarray:
    """|DFT bin|^2 at each DTMF frequency, per window. einsum, not `@`: a
    matrix product goes through BLAS, whose threads stall for milliseconds on
    a busy machine."""
    parts: np.ndarray = np.einsum("wn,fn->wf", windows, _PROBES)
    powers: np.ndarray = parts[:, :8] ** 2 + parts[:, 8:] ** 2
    return powers


def _window_key(power: np.ndarray, mean_square: float) -> str | None:
    if mean_square < MIN_RMS * MIN_RMS:
        return None
    # Share of the window's power in each tone: A_f^2 / sum(A^2), and
    # sum(A^2) = 2 * mean square for a sum of sinusoids.
    share = power / (_BIN_GAIN * _BIN_GAIN * 2 * mean_square)
    low, high = share[:4], share[4:]
    row, col = int(np.argmax(low)), int(np.argmax(high))
    if low[row] < MIN_SHARE or high[col] < MIN_SHARE or low[row] + high[col] < MIN_PAIR_SHARE:
        return None
    if np.sort(low)[-2] > MAX_RIVAL_SHARE or np.sort(high)[-2] > MAX_RIVAL_SHARE:
        return None
    return KEYS[row][col]


def detect_markers(pcm: bytes) -> str:
    """The DTMF keys in `pcm` (PCM16 24 kHz mono), in order; "" if none."""
    usable = len(pcm) - len(pcm) % 2
    samples = np.frombuffer(pcm[:usable], dtype="<i2").astype(np.float64)
    keys: list[str] = []
    if len(samples) < WINDOW:
        return ""
    windows = np.lib.stride_tricks.sliding_window_view(samples, WINDOW)[::HOP]
    powers = _window_powers(windows)
    mean_squares = np.einsum("wn,wn->w", windows, windows) / WINDOW
    run_key: str | None = None
    run = 0
    for power, mean_square in zip(powers, mean_squares, strict=True):
        key = _window_key(power, float(mean_square))
        if key is not None and key == run_key:
            run += 1
        else:
            run_key, run = key, 1
        if key is not None and run == MIN_RUN:
            keys.append(key)
    return "".join(keys)
