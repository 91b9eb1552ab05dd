"""PCM16 <-> float conversion, resampling (libsoxr) and WAV in/out.

The level meter is `huxley_wire.audio.level_dbfs`, the one every part uses."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import soxr

from huxley_wire.audio import SAMPLE_RATE

FULL_SCALE = 32768.0
PROBE_MS = 400


def to_float(pcm: bytes) -> np.ndarray:
    """PCM16 little-endian to float32 in [-1, 1)."""
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / FULL_SCALE


def to_pcm(samples: np.ndarray) -> bytes:
    """float samples to PCM16 little-endian, clipped (never wrapped)."""
    scaled = np.clip(np.rint(samples * FULL_SCALE), -32768, 32767)
    return scaled.astype("<i2").tobytes()


def downmix(samples: np.ndarray, channels: int) -> np.ndarray:
    if channels == 1:
        return samples
    usable = samples[: samples.size - samples.size % channels]
    return usable.reshape(-1, channels).mean(axis=1).astype(np.float32)


class Resampler:
    """A band-limited streaming resampler (libsoxr, high quality), one per
    stream: its filter state carries over from chunk to chunk, so chunk
    boundaries never click and nothing above the output's Nyquist frequency
    folds back as an alias.

    soxr hands its output over in blocks; this returns, for every chunk,
    exactly the samples the input so far is worth at the output rate (20 ms of
    mic in, 20 ms out). It does that by starting with the deepest shortfall
    soxr can have (measured once on silence) as a fixed delay, about 40 ms."""

    QUALITY = "HQ"

    def __init__(self, from_rate: int, to_rate: int = SAMPLE_RATE) -> None:
        if from_rate <= 0 or to_rate <= 0:
            raise ValueError("sample rates must be positive")
        self.from_rate, self.to_rate = from_rate, to_rate
        self._taken = 0  # input samples so far
        self._given = 0  # output samples so far
        self.starved = 0  # output samples soxr owed us and we filled with silence (should stay 0)
        self._stream = None if self.passthrough else self._new_stream()
        # The fixed delay (output samples) that keeps every output chunk full.
        self.delay_samples = 0 if self.passthrough else self._worst_shortfall()
        self._pending = np.zeros(self.delay_samples, dtype=np.float32)

    @property
    def passthrough(self) -> bool:
        return self.from_rate == self.to_rate

    def process(self, samples: np.ndarray) -> np.ndarray:
        if self._stream is None:
            return samples
        chunk = np.ascontiguousarray(samples, dtype=np.float32)
        self._taken += chunk.size
        due = self._taken * self.to_rate // self.from_rate - self._given
        self._pending = np.concatenate([self._pending, self._stream.resample_chunk(chunk)])
        if self._pending.size < due:  # the delay covers soxr's blocks; kept as a guard
            self.starved += due - self._pending.size
            self._pending = np.concatenate(
                [self._pending, np.zeros(due - self._pending.size, dtype=np.float32)]
            )
        out, self._pending = self._pending[:due], self._pending[due:]
        self._given += due
        return out

    def _new_stream(self) -> soxr.ResampleStream:
        return soxr.ResampleStream(self.from_rate, self.to_rate, 1, dtype="float32", quality=self.QUALITY)

    def _worst_shortfall(self) -> int:
        """How far soxr's output can lag behind what is due. Its blocks depend
        only on how much input it has had and repeat well within 400 ms; probed
        1 ms at a time, plus 1 ms for a caller whose cuts fall in between."""
        probe = self._new_stream()
        step = np.zeros(max(1, self.from_rate // 1000), dtype=np.float32)
        taken = given = worst = 0
        for _ in range(PROBE_MS):
            taken += step.size
            given += probe.resample_chunk(step).size
            worst = max(worst, taken * self.to_rate // self.from_rate - given)
        return worst + self.to_rate // 1000 + 1


def read_wav(path: str | Path) -> bytes:
    """A WAV file as PCM16 24 kHz mono (downmixed and resampled if needed)."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path}: {wav.getsampwidth() * 8}-bit WAV; only 16-bit PCM is supported")
        channels, rate = wav.getnchannels(), wav.getframerate()
        raw = wav.readframes(wav.getnframes())
    samples = downmix(to_float(raw), channels)
    if rate != SAMPLE_RATE:  # the whole file at once: soxr compensates its own delay
        samples = soxr.resample(samples, rate, SAMPLE_RATE, quality=Resampler.QUALITY)
    return to_pcm(samples)


def open_wav_writer(path: str | Path) -> wave.Wave_write:
    """A WAV writer for PCM16 24 kHz mono; the header is kept current as frames are written."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    writer = wave.open(str(target), "wb")  # noqa: SIM115 - the caller keeps it open
    writer.setnchannels(1)
    writer.setsampwidth(2)
    writer.setframerate(SAMPLE_RATE)
    return writer
