"""The browser client page in real headless Chromium with a fake microphone:
holding the button sends the mic to the bus, a reply published for a granted
stream is played by the page, and the focus panel shows the channels. The
screenshots' pixels are checked, not just taken."""

from __future__ import annotations

import asyncio
import math
import wave
from pathlib import Path

import numpy as np
import pytest
from playwright.async_api import async_playwright

from audio.conftest import Bus
from audio.png import decode_png, share_near
from audio.signals import amplitude_at, tone
from huxley_audio_io.pcm import to_float, to_pcm
from huxley_audio_io.service import AudioService
from huxley_wire.audio import SAMPLE_RATE, decode_frame
from huxley_wire.messages.focus import Channel, ContentType, FocusState
from support.browser import launch_chromium

pytestmark = pytest.mark.browser

GREEN, AMBER, RED, METER = (0x2E, 0x9E, 0x5B), (0xD9, 0x9A, 0x22), (0xE0, 0x46, 0x3C), (0x3C, 0xCF, 0x7A)
MIC_HZ = 440.0
# The speaker meter's left end is lit (drawn green) in the page's canvas.
METER_LIT = "document.querySelector('#spk-meter').getContext('2d').getImageData(1, 8, 1, 1).data[1] > 150"


def fake_mic(path: Path) -> Path:
    """A 48 kHz WAV of a steady 440 Hz tone: Chromium loops it as the microphone.
    (Playwright gives the browser a fresh profile of its own.)"""
    t = np.arange(48_000 * 3) / 48_000
    samples = (0.5 * np.sin(2 * math.pi * MIC_HZ * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(48_000)
        wav.writeframes(samples.tobytes())
    return path


def peak_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / SAMPLE_RATE)[int(np.argmax(spectrum))])


async def shot(page, selector: str) -> np.ndarray:
    return decode_png(await page.locator(selector).screenshot())


async def test_hold_to_talk_reply_playback_and_focus_panel(gateway: AudioService, bus: Bus, tmp_path: Path):
    mic = await bus.watch(bus.subjects.audio_mic_assistant())
    ptt = await bus.watch(bus.subjects.audio_ptt())
    played = await bus.watch(bus.subjects.audio_played())
    async with async_playwright() as pw:
        browser = await launch_chromium(pw, fake_mic(tmp_path / "mic.wav"))
        try:
            page = await browser.new_page(viewport={"width": 1200, "height": 1000})
            await page.goto(f"http://127.0.0.1:{gateway.backend.port}/")  # type: ignore[attr-defined]
            await page.wait_for_selector("body[data-conn=connected]")

            # -- the focus panel shows the channels --------------------------------------
            await bus.focus("turn-1", Channel.DIALOG, FocusState.FOREGROUND, interface="bridge")
            await bus.focus(
                "book-1",
                Channel.CONTENT,
                FocusState.BACKGROUND,
                content_type=ContentType.NONMIXABLE,
                label="Moby Dick",
            )
            await page.wait_for_selector('.channel[data-channel=content] li[data-state="background"]')
            dialog_row = await shot(page, '.channel[data-channel="dialog"]')
            content_row = await shot(page, '.channel[data-channel="content"]')
            comms_row = await shot(page, '.channel[data-channel="comms"]')
            assert share_near(dialog_row, GREEN) > 0.05 and share_near(dialog_row, AMBER) == 0
            assert share_near(content_row, AMBER) > 0.05 and share_near(content_row, GREEN) == 0
            assert share_near(comms_row, GREEN) == 0 and share_near(comms_row, AMBER) == 0
            assert "Moby Dick" in await page.inner_text('.channel[data-channel="content"]')
            assert "must_pause" in await page.inner_text('.channel[data-channel="content"]')
            await bus.focus("turn-1", Channel.DIALOG, FocusState.NONE)
            await page.wait_for_selector('.channel[data-channel="dialog"] li', state="detached")

            # -- holding the button sends the microphone ------------------------------------
            box = await page.locator("#ptt").bounding_box()
            assert box is not None
            await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            await page.mouse.down()
            start = await ptt.next_json()
            assert start["action"] == "start" and start["source"] == "web"
            received = []
            while len(received) < 40:  # 0.8 s of speech
                frame = decode_frame((await mic.next()).data)
                received.append(frame)
            pressed = await shot(page, "#ptt")
            assert share_near(pressed, RED) > 0.3  # the button shows it is held
            await page.mouse.up()
            stop = await ptt.next_json(lambda o: o["action"] == "stop")
            while len(received) < stop["frames"]:
                received.append(decode_frame((await mic.next()).data))
            assert stop["press_id"] == start["press_id"] and stop["frames"] == len(received) >= 40
            assert {f.stream for f in received} == {start["press_id"]}
            assert [f.seq for f in received] == list(range(len(received)))
            speech = to_float(b"".join(f.pcm for f in received))
            steady = speech[2400:]  # skip the capture's start-up
            assert abs(peak_hz(steady) - MIC_HZ) < 3  # resampled to 24 kHz correctly
            assert amplitude_at(steady, MIC_HZ) > 0.1
            assert await page.get_attribute("#ptt", "aria-pressed") == "false"

            # -- the reply is played by the page ---------------------------------------------
            await bus.focus("turn-2", Channel.DIALOG, FocusState.FOREGROUND, interface="bridge")
            reply = to_pcm(tone(660, 3000, amplitude=0.5))
            producer = asyncio.create_task(bus.stream("turn-2", reply))
            await page.wait_for_function(
                f"Number(document.querySelector('#played').dataset.ms) > 200 && {METER_LIT}"
            )
            meter = await shot(page, "#spk-meter")
            assert share_near(meter, METER) > 0.1  # the speaker meter moves while it plays
            await producer
            drained = await played.next_json(lambda o: o["stream_id"] == "turn-2" and o["drained"])
            assert drained["played_ms"] == 3000.0
            await page.wait_for_function("Number(document.querySelector('#played').dataset.ms) >= 2950")
            await page.wait_for_function(f"!({METER_LIT})")  # the meter drew a frame after the end
            quiet = await shot(page, "#spk-meter")
            assert share_near(quiet, METER) == 0
        finally:
            await browser.close()
