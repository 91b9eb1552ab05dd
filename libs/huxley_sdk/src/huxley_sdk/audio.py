"""Loading sound files in the one format skills play: PCM16, 24 kHz, mono."""

from __future__ import annotations

import wave
from collections.abc import Iterable
from pathlib import Path

SAMPLE_RATE = 24_000
SAMPLE_WIDTH = 2
CHANNELS = 1


def load_pcm_palette(directory: Path, roles: Iterable[str]) -> dict[str, bytes]:
    """Read `<directory>/<role>.wav` for each role and return role -> raw PCM.

    Files that are missing, unreadable or in another format are left out; the
    caller decides what a partial palette means. The WAV header is parsed
    (not skipped by size), so files with extra chunks load correctly.
    """
    palette: dict[str, bytes] = {}
    if not directory.is_dir():
        return palette
    for role in roles:
        path = directory / f"{role}.wav"
        if not path.is_file():
            continue
        try:
            with wave.open(str(path), "rb") as wav:
                if (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) != (
                    CHANNELS,
                    SAMPLE_WIDTH,
                    SAMPLE_RATE,
                ):
                    continue
                palette[role] = wav.readframes(wav.getnframes())
        except (wave.Error, EOFError, OSError):
            continue
    return palette
