"""Across processes: the real focus service, audio-io (file backend: its
speaker is a WAV file) and holders acquiring channels the way the bridge and
a skill-host do. What was heard is read back from the WAV: a MIXABLE stream
ducks under a turn and comes back, and nothing of it is heard once focus
ended it, though its producer keeps sending."""

from __future__ import annotations

import asyncio
import json
import statistics
import wave
from pathlib import Path

import numpy as np
import pytest

from audio.conftest import Bus
from audio.signals import amplitudes, tone
from huxley_audio_io.pcm import to_float, to_pcm
from huxley_runtime.focus_client import FocusClient
from huxley_wire.messages.focus import ActivityKind, ActivityMeta, Channel, ContentType
from support.focus_peers import RecordingHandler
from support.services import ServiceProcess, wait_healthy

pytestmark = pytest.mark.slow

MUSIC_HZ, VOICE_HZ = 440.0, 1000.0


async def test_music_ducks_under_a_turn_returns_and_is_never_heard_after_it_ends(
    base_env: dict[str, str], bus: Bus, site: str, tmp_path: Path
):
    speaker = tmp_path / "speaker.wav"
    focus = ServiceProcess("huxley_focus", base_env, tmp_path / "focus.log").start()
    audio = ServiceProcess(
        "huxley_audio_io",
        {**base_env, "HUXLEY_AUDIO_BACKEND": "file", "HUXLEY_AUDIO_FILE_OUT": str(speaker)},
        tmp_path / "audio-io.log",
    ).start()
    played = await bus.watch(bus.subjects.audio_played())
    skills = FocusClient(bus.nc, bus.subjects, "skill-host-e2e", RecordingHandler())
    bridge_handler = RecordingHandler()
    bridge = FocusClient(bus.nc, bus.subjects, "bridge", bridge_handler)
    producer: asyncio.Task[None] | None = None
    try:
        await wait_healthy(bus.nc, site, "focus")
        async with asyncio.timeout(20):
            while (await wait_healthy(bus.nc, site, "audio-io")).status != "ok":  # noqa: ASYNC110 - health
                await asyncio.sleep(0.1)
        await skills.start()
        await bridge.start()

        music = await skills.acquire(
            Channel.CONTENT,
            "radio",
            content_type=ContentType.MIXABLE,
            patience_ms=60_000,
            meta=ActivityMeta(kind=ActivityKind.STREAM, skill="radio", label="Radio"),
        )
        assert music.state == "foreground"
        producer = asyncio.create_task(
            bus.produce(music.activity_id, MUSIC_HZ, lead_ms=200, owner="skill-host-e2e")
        )
        await played.next_json(lambda o: o["stream_id"] == music.activity_id and o["played_ms"] >= 600)

        turn = await bridge.acquire(Channel.DIALOG, "turn", meta=ActivityMeta(kind=ActivityKind.TURN))
        assert turn.state == "foreground"
        voice = to_pcm(tone(VOICE_HZ, 1200, amplitude=0.4))
        await bus.stream(turn.activity_id, voice, lead_ms=200)
        await played.next_json(lambda o: o["stream_id"] == turn.activity_id and o["drained"])
        await bridge.release(turn.activity_id)

        before = (await played.next_json(lambda o: o["stream_id"] == music.activity_id))["played_ms"]
        await played.next_json(
            lambda o: o["stream_id"] == music.activity_id and o["played_ms"] >= before + 600
        )
        await skills.release(music.activity_id)  # focus ends it; the producer goes on regardless
        await played.next_json(lambda o: o["stream_id"] == music.activity_id and o["drained"])
        ended_at = len(played.seen)
        await bus.until_produced(music.activity_id, bus.produced[music.activity_id] + 30)  # 0.6 s more
        assert all(json.loads(m.data)["stream_id"] != music.activity_id for m in played.seen[ended_at:])
        assert await audio.terminate() == 0
    finally:
        if producer is not None:
            producer.cancel()
        await bridge.stop()
        await skills.stop()
        audio.kill()
        await focus.terminate()
        focus.kill()

    with wave.open(str(speaker), "rb") as wav:
        heard = to_float(wav.readframes(wav.getnframes()))
    blocks = [amplitudes(heard[i : i + 480], [MUSIC_HZ, VOICE_HZ]) for i in range(0, heard.size - 479, 480)]
    with_voice = [i for i, (_, v) in enumerate(blocks) if v > 0.2]
    assert with_voice, "the turn was never heard"
    first, last = with_voice[0], with_voice[-1]
    assert last - first + 1 >= 55  # 1.2 s of voice, give or take a short underrun
    music_before = [m for m, _ in blocks[:first] if m > 0.01]
    music_under = [m for m, _ in blocks[first + 6 : last - 1]]  # after the 100 ms ramp
    after_turn = blocks[last + 6 :]
    music_after = [m for m, _ in after_turn if m > 0.01]
    assert statistics.median(music_before) == pytest.approx(0.5, rel=0.05)
    assert statistics.median(music_under) == pytest.approx(0.15, rel=0.08)  # ducked to 0.3
    assert statistics.median(music_after) == pytest.approx(0.5, rel=0.05)  # and back to full
    # Once released, not one more sample of it, though frames kept coming for 0.6 s.
    last_sound = max(i for i, block in enumerate(blocks) if block[0] > 0.01)
    assert len(blocks) - 1 - last_sound >= 25
    assert not np.any(heard[(last_sound + 1) * 480 :])
