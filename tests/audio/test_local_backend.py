"""The PyAudio backend on virtual ALSA devices this machine can always
provide: PCMs of ALSA's `file` plugin over the `null` plugin. The microphone
reads a raw file we wrote, the speaker writes a raw file we read back, so the
test checks exactly what was captured and what was played."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from audio.conftest import Bus
from audio.signals import amplitude_at, tone
from huxley_audio_io.pcm import to_float, to_pcm
from huxley_runtime.rpc import request
from huxley_wire.audio import decode_frame
from huxley_wire.messages import audio as m
from huxley_wire.messages.focus import Channel, FocusState
from support.services import ServiceProcess, wait_healthy

pyaudio = pytest.importorskip("pyaudio")

ASOUND = """
pcm.huxley_mic {{
    type file
    slave.pcm "null"
    file "/dev/null"
    infile "{mic}"
    format "raw"
}}
pcm.huxley_speaker {{
    type file
    slave.pcm "null"
    file "{speaker}"
    format "raw"
}}
"""


@pytest.fixture
def alsa(tmp_path: Path) -> dict[str, str]:
    """An ALSA configuration with the two virtual devices, as environment."""
    mic = tmp_path / "mic.raw"
    mic.write_bytes(to_pcm(tone(440, 20_000, amplitude=0.4)))  # what the "microphone" hears
    conf = tmp_path / "asound.conf"
    conf.write_text(ASOUND.format(mic=mic, speaker=tmp_path / "speaker.raw"))
    return {"ALSA_CONFIG_PATH": f"/usr/share/alsa/alsa.conf:{conf}", "JACK_NO_START_SERVER": "1"}


def test_huxley_audio_devices_lists_them(alsa: dict[str, str]):
    result = subprocess.run(
        [sys.executable, "-m", "huxley_cli.main", "audio", "devices", "--json"],
        env={**__import__("os").environ, **alsa},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    devices = {d["name"]: d for d in json.loads(result.stdout)}
    assert {"huxley_mic", "huxley_speaker"} <= set(devices)
    assert devices["huxley_mic"]["inputs"] > 0 and devices["huxley_speaker"]["outputs"] > 0


async def test_pyaudio_backend_captures_and_plays_on_virtual_alsa_devices(
    alsa: dict[str, str], base_env: dict[str, str], bus: Bus, tmp_path: Path, site: str
):
    claim_mic = await bus.watch(bus.subjects.audio_mic_claim_all())
    played = await bus.watch(bus.subjects.audio_played())
    env = {
        **base_env,
        **alsa,
        "HUXLEY_AUDIO_BACKEND": "local",
        "HUXLEY_AUDIO_INPUT_DEVICE": "huxley_mic",  # by name
        "HUXLEY_AUDIO_OUTPUT_DEVICE": "speaker",  # by a unique part of the name
        "HUXLEY_KEYBOARD_PTT": "0",
    }
    proc = ServiceProcess("huxley_audio_io", env, tmp_path / "audio-io.log").start()
    try:
        health = await wait_healthy(bus.nc, site, "audio-io")
        assert health.detail["input_device"].endswith("huxley_mic"), proc.output()
        assert health.detail["output_device"].endswith("huxley_speaker")

        # Capture: a claim holding COMMS in the foreground gets the microphone.
        await bus.focus("call-1", Channel.COMMS, FocusState.FOREGROUND, skill="phone")
        frames = [decode_frame((await claim_mic.next()).data) for _ in range(25)]
        assert [f.seq for f in frames] == list(range(25)) and {f.stream for f in frames} == {"call-1"}
        heard = to_float(b"".join(f.pcm for f in frames))
        assert amplitude_at(heard, 440) == pytest.approx(0.4, rel=0.02)
        await bus.focus("call-1", Channel.COMMS, FocusState.NONE)

        # Playback: a granted stream reaches the speaker device.
        reply = to_pcm(tone(660, 400, amplitude=0.3))
        await bus.focus("turn-1", Channel.DIALOG, FocusState.FOREGROUND)
        snapshot = await request(bus.nc, bus.subjects.audio_rpc(), m.AudioSnapshotRequest())
        assert snapshot.backend == "local"
        await bus.frames("turn-1", reply, eos=True)
        drained = await played.next_json(lambda o: o["drained"])
        assert drained["stream_id"] == "turn-1" and drained["played_ms"] == 400.0
        assert await proc.terminate() == 0
    finally:
        proc.kill()
    speaker = (tmp_path / "speaker.raw").read_bytes()
    assert reply in speaker  # sample-exact, in one piece, between the silence blocks
    assert len(speaker) >= len(reply) + 960
