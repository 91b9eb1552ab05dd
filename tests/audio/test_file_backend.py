"""The file backend: a WAV file as the microphone (with PTT held while it
plays), a WAV file as the speaker."""

from __future__ import annotations

import asyncio
import math
import wave
from pathlib import Path

import numpy as np
import pytest

from audio.conftest import Bus
from audio.signals import amplitude_at, tone
from huxley_audio_io.pcm import to_float, to_pcm
from huxley_audio_io.service import AudioService
from huxley_audio_io.settings import AudioSettings
from huxley_wire.audio import decode_frame
from huxley_wire.messages.focus import Channel, FocusState
from support.services import running


def write_wav(path: Path, rate: int, channels: int, seconds: float, freq: float) -> Path:
    t = np.arange(int(rate * seconds)) / rate
    mono = (0.5 * np.sin(2 * math.pi * freq * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(np.repeat(mono, channels).tobytes())
    return path


async def test_wav_in_is_spoken_with_ptt_held_and_wav_out_is_the_speaker(
    audio_settings: AudioSettings, bus: Bus, tmp_path: Path
):
    ptt = await bus.watch(bus.subjects.audio_ptt())
    mic = await bus.watch(bus.subjects.audio_mic_assistant())
    played = await bus.watch(bus.subjects.audio_played())
    settings = audio_settings.model_copy(
        update={
            "audio_backend": "file",
            "audio_file_in": write_wav(
                tmp_path / "question.wav", 48_000, 2, 0.5, 300
            ),  # resampled, downmixed
            "audio_file_out": tmp_path / "out" / "speaker.wav",
        }
    )
    reply = to_pcm(tone(660, 200, amplitude=0.3))
    async with running(AudioService, settings) as service:
        start = await ptt.next_json()
        assert start["action"] == "start" and start["source"] == "file"
        stop = await ptt.next_json(lambda o: o["action"] == "stop")
        assert stop["frames"] == 25  # 500 ms in 20 ms frames
        await asyncio.wait_for(service.backend.input_done.wait(), 10)  # type: ignore[attr-defined]
        while len(mic.seen) < 25:
            await mic.next()
        spoken = to_float(b"".join(decode_frame(msg.data).pcm for msg in mic.seen))
        assert spoken.size == 12_000 and amplitude_at(spoken, 300) == pytest.approx(0.5, rel=0.01)

        await bus.focus("turn-1", Channel.DIALOG, FocusState.FOREGROUND)
        await bus.frames("turn-1", reply, eos=True)
        await played.next_json(lambda o: o["drained"])
        health = service.health()[1]
        assert health["fed_ms"] == 500 and health["written_ms"] > 200
    with wave.open(str(settings.audio_file_out), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 24_000)
        written = wav.readframes(wav.getnframes())
    assert reply in written  # the speaker file is a timeline: silence, the reply, silence
    assert not any(written[: written.index(reply)])


async def test_a_missing_input_file_degrades_health_instead_of_crashing(
    audio_settings: AudioSettings, tmp_path: Path
):
    settings = audio_settings.model_copy(
        update={"audio_backend": "file", "audio_file_in": tmp_path / "nope.wav"}
    )
    async with running(AudioService, settings) as service:
        status, detail = service.health()
        assert status == "degraded"
        assert any("cannot read" in p for p in detail["problems"])
