"""PCM16 <-> float conversion, a streaming resampler and a level meter."""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np

from huxley_wire.audio import SAMPLE_RATE

FULL_SCALE = 32768.0


def to_float(pcm: bytes) -> np.ndarray:
    """PCM16 little-endian to float32 in [-1, 1)."""
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / FULL_SCALE


def to_pcm(samples: np.ndarray) -> bytes:
    """float samples to PCM16 little-endian, clipped (never wrapped)."""
    scaled = np.clip(np.rint(samples * FULL_SCALE), -32768, 32767)
    return scaled.astype("<i2").tobytes()


def dbfs(samples: np.ndarray) -> float:
    """RMS level of float samples in dBFS; -inf for silence."""
    if samples.size == 0:
        return -math.inf
    mean_square = float(np.mean(np.square(samples, dtype=np.float64)))
    return -math.inf if mean_square <= 0 else 10 * math.log10(mean_square)


def downmix(samples: np.ndarray, channels: int) -> np.ndarray:
    if channels == 1:
        return samples
    usable = samples[: samples.size - samples.size % channels]
    return usable.reshape(-1, channels).mean(axis=1).astype(np.float32)


class Resampler:
    """Linear-interpolation resampler that keeps its phase across chunks, so a
    stream cut into arbitrary chunks resamples exactly like one piece."""

    def __init__(self, from_rate: int, to_rate: int = SAMPLE_RATE) -> None:
        if from_rate <= 0 or to_rate <= 0:
            raise ValueError("sample rates must be positive")
        self.step = from_rate / to_rate  # input samples per output sample
        self._pos = 0.0  # next output position, relative to _tail's first sample
        self._tail = np.zeros(0, dtype=np.float32)

    @property
    def passthrough(self) -> bool:
        return self.step == 1.0

    def process(self, samples: np.ndarray) -> np.ndarray:
        if self.passthrough:
            return samples
        data = np.concatenate([self._tail, samples.astype(np.float32)])
        if data.size < 2:
            self._tail = data
            return np.zeros(0, dtype=np.float32)
        last = data.size - 1  # interpolation needs a right neighbour
        count = max(0, math.ceil((last - self._pos) / self.step))
        positions = self._pos + self.step * np.arange(count)
        out = np.interp(positions, np.arange(data.size), data).astype(np.float32)
        self._pos += self.step * count
        keep_from = int(self._pos)
        self._tail = data[keep_from:]
        self._pos -= keep_from
        return out


def read_wav(path: str | Path) -> bytes:
    """A WAV file as PCM16 24 kHz mono (downmixed and resampled if needed)."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path}: {wav.getsampwidth() * 8}-bit WAV; only 16-bit PCM is supported")
        channels, rate = wav.getnchannels(), wav.getframerate()
        raw = wav.readframes(wav.getnframes())
    samples = downmix(to_float(raw), channels)
    resampler = Resampler(rate)
    return to_pcm(resampler.process(samples)) if not resampler.passthrough else to_pcm(samples)


def open_wav_writer(path: str | Path) -> wave.Wave_write:
    """A WAV writer for PCM16 24 kHz mono; the header is kept current as frames are written."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    writer = wave.open(str(target), "wb")  # noqa: SIM115 - the caller keeps it open
    writer.setnchannels(1)
    writer.setsampwidth(2)
    writer.setframerate(SAMPLE_RATE)
    return writer
