"""audio-io's bench tap (HUXLEY_AUDIO_BENCH_TAP): what bench/bench_paths.py
reads its intake stamps from, on the real service with a real client."""

from __future__ import annotations

import asyncio
import base64
import time

import pytest
import websockets

from audio.conftest import PRODUCER, WAIT_S, Bus, WebClient, client_url
from huxley_audio_io import bench_tap
from huxley_audio_io.service import AudioService
from huxley_audio_io.settings import AudioSettings
from huxley_runtime.bench_stamps import STAMP_BYTES
from huxley_wire.audio import FRAME_BYTES, AudioFrame, encode_frame, now_us
from support.services import running


async def test_output_frames_in_the_mixer_and_mic_chunks_at_the_edge_are_stamped(
    audio_settings: AudioSettings, bus: Bus, tmp_path, monkeypatch: pytest.MonkeyPatch
):
    stamps = tmp_path / "stamps.txt"
    monkeypatch.setenv(bench_tap.ENV, str(stamps))
    out = bytes(range(1, 17)) + bytes(FRAME_BYTES - 16)
    second = bytes(range(51, 67)) + bytes(FRAME_BYTES - 16)  # joined to `out` in one message
    mic = bytes(range(101, 117)) + bytes(FRAME_BYTES - 16)
    before = time.monotonic_ns()
    async with running(AudioService, audio_settings) as service:
        # Behind the bench's tap: once these saw a chunk, its line is written.
        seen: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        service.intake_taps.append(lambda frame: seen.put_nowait(("out", frame.pcm)))
        service.mic_taps.append(lambda pcm: seen.put_nowait(("mic", pcm)))
        joined = AudioFrame("s1", 0, now_us(), out + second)
        await bus.nc.publish(bus.subjects.audio_out_of(PRODUCER, "s1"), encode_frame(joined))
        async with asyncio.timeout(WAIT_S):
            assert await seen.get() == ("out", out + second)
        async with websockets.connect(client_url(service)) as ws:
            client = WebClient(ws)
            await client.next("input_mode")
            await client.send({"type": "ptt_start"})
            await client.send({"type": "audio", "data": base64.b64encode(mic).decode()})
            async with asyncio.timeout(WAIT_S):
                assert await seen.get() == ("mic", mic)
    after = time.monotonic_ns()
    lines = [line.split(" ") for line in stamps.read_text().splitlines()]
    assert (
        [(kind, head) for kind, _at, head in lines]
        == [
            ("out", out[:STAMP_BYTES].hex()),
            ("out", second[:STAMP_BYTES].hex()),  # each 20 ms frame of a message that joins several
            ("mic", mic[:STAMP_BYTES].hex()),
        ]
    )
    # CLOCK_MONOTONIC, the clock the bench's other processes stamp with.
    assert before < int(lines[0][1]) == int(lines[1][1]) <= int(lines[2][1]) < after


async def test_without_the_variable_nothing_is_tapped(audio_settings: AudioSettings, monkeypatch):
    monkeypatch.delenv(bench_tap.ENV, raising=False)
    service = AudioService(audio_settings)
    assert service.intake_taps == [] and service.mic_taps == []
