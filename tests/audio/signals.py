"""Synthetic signals and measurements for the audio tests."""

from __future__ import annotations

import math

import numpy as np

from huxley_audio_io.mixer import Grant, Mixer
from huxley_audio_io.pcm import to_float, to_pcm
from huxley_wire.audio import FRAME_BYTES, SAMPLE_RATE, AudioFrame
from huxley_wire.messages.focus import Behavior, Channel, FocusState

FOREGROUND = Grant(FocusState.FOREGROUND, Behavior.PRIMARY, 1.0, 100, Channel.CONTENT)
DUCKED = Grant(FocusState.BACKGROUND, Behavior.MAY_DUCK, 0.3, 100, Channel.CONTENT)
PAUSED = Grant(FocusState.BACKGROUND, Behavior.MUST_PAUSE, 0.0, 100, Channel.CONTENT)
STOPPED = Grant(FocusState.NONE, Behavior.MUST_STOP, 0.0, 100, Channel.CONTENT)
DIALOG = Grant(FocusState.FOREGROUND, Behavior.PRIMARY, 1.0, 100, Channel.DIALOG)


def tone(freq: float, ms: int, amplitude: float = 0.5, start_sample: int = 0) -> np.ndarray:
    n = SAMPLE_RATE * ms // 1000
    t = (np.arange(n) + start_sample) / SAMPLE_RATE
    return (amplitude * np.sin(2 * math.pi * freq * t)).astype(np.float32)


def counter(n: int, start: int = 0) -> np.ndarray:
    """A signal whose every sample says where it is: sample i is (i % 16384) / 32768.
    Exact in PCM16, so continuity and gaps are visible sample by sample."""
    return ((np.arange(start, start + n) % 16384) / 32768.0).astype(np.float32)


def frames(stream: str, samples: np.ndarray, *, eos: bool = False, first_seq: int = 0) -> list[AudioFrame]:
    pcm = to_pcm(samples)
    chunks = [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]
    out = [AudioFrame(stream=stream, seq=first_seq + k, ts_us=0, pcm=c) for k, c in enumerate(chunks)]
    if eos:
        out.append(AudioFrame(stream=stream, seq=first_seq + len(chunks), ts_us=0, pcm=b"", eos=True))
    return out


def feed(mixer: Mixer, items: list[AudioFrame]) -> None:
    for frame in items:
        mixer.push(frame)


def render(mixer: Mixer, ms: int) -> np.ndarray:
    """Render `ms` of output (a whole number of 20 ms blocks) as float samples."""
    blocks = [to_float(mixer.render().pcm) for _ in range(ms // 20)]
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)


def amplitude_at(signal: np.ndarray, freq: float) -> float:
    """Amplitude of the `freq` component (least squares on sin and cos), so two
    tones mixed together can be measured separately."""
    t = np.arange(signal.size) / SAMPLE_RATE
    basis = np.stack([np.sin(2 * math.pi * freq * t), np.cos(2 * math.pi * freq * t)], axis=1)
    coeffs, *_ = np.linalg.lstsq(basis, signal.astype(np.float64), rcond=None)
    return float(math.hypot(*coeffs))


def amplitudes(signal: np.ndarray, freqs: list[float]) -> list[float]:
    """Amplitude of each frequency, fitted jointly (no leakage between them
    even over a short window)."""
    t = np.arange(signal.size) / SAMPLE_RATE
    columns = []
    for f in freqs:
        columns += [np.sin(2 * math.pi * f * t), np.cos(2 * math.pi * f * t)]
    coeffs, *_ = np.linalg.lstsq(np.stack(columns, axis=1), signal.astype(np.float64), rcond=None)
    return [float(math.hypot(coeffs[2 * i], coeffs[2 * i + 1])) for i in range(len(freqs))]
