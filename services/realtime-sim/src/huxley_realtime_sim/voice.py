"""The simulator's voice: text to PCM16 24 kHz mono.

`ToneVoice` is deterministic and instant (one short tone per word, the
length follows the text): what tests use. `EspeakVoice` speaks with espeak-ng
when it is installed, which makes the offline stack pleasant to listen to;
it falls back to tones if espeak-ng is missing or fails. Both cache by text.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import math
import shutil
import wave
from typing import Protocol

import numpy as np

from huxley_runtime.logging import get_logger

SAMPLE_RATE = 24_000
log = get_logger(component="voice")


def tone(hz: float, ms: int, amplitude: float = 0.25) -> bytes:
    n = SAMPLE_RATE * ms // 1000
    t = np.arange(n) / SAMPLE_RATE
    wave_ = amplitude * np.sin(2 * math.pi * hz * t)
    fade = min(n // 2, SAMPLE_RATE * 5 // 1000)  # 5 ms ramps: no clicks
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        wave_[:fade] *= ramp
        wave_[n - fade :] *= ramp[::-1]
    return (wave_ * 32767).astype("<i2").tobytes()


def silence(ms: int) -> bytes:
    return bytes(SAMPLE_RATE * ms // 1000 * 2)


class Voice(Protocol):
    name: str

    async def render(self, text: str) -> bytes: ...


class ToneVoice:
    """One tone per word (pitch from the word, 55 ms per letter, at least
    120 ms) and 40 ms between words."""

    name = "tones"

    def __init__(self) -> None:
        self._cache: dict[str, bytes] = {}

    def render_now(self, text: str) -> bytes:
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        parts = []
        for word in text.split():
            digest = hashlib.blake2s(word.casefold().encode(), digest_size=2).digest()
            hz = 220.0 + int.from_bytes(digest, "big") % 440
            parts += [tone(hz, max(120, 55 * len(word))), silence(40)]
        pcm = b"".join(parts)
        self._cache[text] = pcm
        return pcm

    async def render(self, text: str) -> bytes:
        return self.render_now(text)


def _wav_to_pcm24k(data: bytes) -> bytes:
    with wave.open(io.BytesIO(data)) as wav:
        rate, width, channels = wav.getframerate(), wav.getsampwidth(), wav.getnchannels()
        frames = wav.readframes(wav.getnframes())
    if width != 2:
        raise ValueError(f"espeak-ng gave {width * 8}-bit audio, expected 16-bit")
    samples = np.frombuffer(frames, dtype="<i2").astype(np.float64)
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    if rate != SAMPLE_RATE and len(samples):
        positions = np.arange(0, len(samples) * SAMPLE_RATE // rate) * rate / SAMPLE_RATE
        samples = np.interp(positions, np.arange(len(samples)), samples)
    return np.clip(samples, -32768, 32767).astype("<i2").tobytes()


class EspeakVoice:
    name = "espeak"

    def __init__(self, voice: str = "en", words_per_minute: int = 170) -> None:
        self.binary = shutil.which("espeak-ng")
        self.voice = voice
        self.words_per_minute = words_per_minute
        self._fallback = ToneVoice()
        self._cache: dict[str, bytes] = {}

    @property
    def available(self) -> bool:
        return self.binary is not None

    async def render(self, text: str) -> bytes:
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        if self.binary is None:
            return await self._fallback.render(text)
        try:
            proc = await asyncio.create_subprocess_exec(
                self.binary,
                "--stdout",
                "-v",
                self.voice,
                "-s",
                str(self.words_per_minute),
                "--",
                text,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
            if proc.returncode != 0:
                raise RuntimeError(err.decode(errors="replace").strip() or f"exit {proc.returncode}")
            pcm = _wav_to_pcm24k(out)
        except (OSError, RuntimeError, ValueError, TimeoutError, wave.Error) as exc:
            log.warning("espeak_failed", error=str(exc), text=text[:60])
            return await self._fallback.render(text)
        self._cache[text] = pcm
        return pcm


def make_voice(kind: str, espeak_voice: str = "en") -> Voice:
    if kind == "espeak":
        voice = EspeakVoice(espeak_voice)
        if voice.available:
            return voice
        log.warning("espeak_missing", message="espeak-ng is not installed; the simulator speaks in tones")
    return ToneVoice()
