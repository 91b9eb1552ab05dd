"""The user journey of `make up` with a browser, end to end: the page served by
audio-io's web backend, in real headless Chromium whose fake microphone loops
DTMF key "1"; the person holds the talk button, "asks" the time, and hears
the answer. Behind it every service is a real process on the bus (storage,
focus, a skill-host with the published `system` skill, audio-io, the bridge)
and the local Realtime simulator is the model (browser_rules.yaml).

Everything the person sees and hears is read from the page (its DOM and its
speaker meter); the bus confirms the turn ended and DIALOG was given back."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client
from playwright.async_api import Page, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeout

from e2e.speaker import speech
from e2e.stack import BusLog
from e2e.web_stack import (
    RECORD_BODY,
    WebStack,
    marker_mic,
    write_web_persona,
)
from huxley_realtime_sim import SimServer
from huxley_realtime_sim.rules import load_rules
from huxley_realtime_sim.voice import ToneVoice
from huxley_wire.messages.focus import Channel
from huxley_wire.subjects import Subjects
from support.browser import launch_chromium
from support.waiting import until

pytestmark = [pytest.mark.slow, pytest.mark.browser]

RULES = Path(__file__).resolve().parent / "browser_rules.yaml"
QUESTION = "What time is it?"
ACK = "One moment."
PAGE_WAIT_MS = 20_000  # a failure bound only, like stack.WAIT_S
PRESS_FRAMES = 60  # 1.2 s of mic: at least two whole periods of the looped marker
# The speaker meter's left end is lit (drawn green) in the page's canvas.
METER_LIT = "document.querySelector('#spk-meter').getContext('2d').getImageData(1, 8, 1, 1).data[1] > 150"
SPOKE_THEN_QUIET = (
    "window.__seen.some((s) => s.speaking === 'true') && document.body.dataset.speaking === 'false'"
)
TRANSCRIPT = "[...document.querySelectorAll('#transcript-list li')].map((li) => li.textContent)"


@pytest.fixture
async def web_sim() -> AsyncIterator[SimServer]:
    async with SimServer(load_rules(RULES), voice=ToneVoice()) as server:
        yield server


@pytest.fixture
async def web_stack(
    nc: Client, site: str, base_env: dict[str, str], tmp_path: Path, web_sim: SimServer
) -> AsyncIterator[WebStack]:
    env = {
        **base_env,
        "HUXLEY_PERSONA": str(write_web_persona(tmp_path / "persona" / "browser.yaml")),
        "HUXLEY_LOG_LEVEL": "info",
        "HUXLEY_STORAGE_BACKUPS": "0",
        "HUXLEY_SCHEMA_WAIT_S": "0.2",
        "HUXLEY_AUDIO_BACKEND": "web",
        "HUXLEY_WEB_HOST": "127.0.0.1",
        "HUXLEY_WEB_PORT": "0",  # any free port; read back from audio-io's health
        "HUXLEY_REALTIME_URL": web_sim.url,
    }
    stack = WebStack(nc, site, tmp_path, web_sim, env, await BusLog().start(nc, Subjects(site)))
    stack.start()
    try:
        await stack.wait_ready(tools={"get_current_time"}, skills={"system"})
        yield stack
    finally:
        await stack.stop()


def spoken_ms(phrase: str) -> int:
    return len(speech(phrase)) // 48


async def transcript_lines(page: Page, count: int) -> list[str]:
    """The page's transcript, once it has `count` lines."""
    try:
        await page.wait_for_function(f"{TRANSCRIPT}.length >= {count}", timeout=PAGE_WAIT_MS)
    except PlaywrightTimeout:
        raise AssertionError(f"the page's transcript: {await page.evaluate(TRANSCRIPT)}") from None
    lines: list[str] = await page.evaluate(TRANSCRIPT)
    return lines


async def hold_to_talk(page: Page, stack: WebStack) -> dict[str, Any]:
    """Hold the button until the page has sent PRESS_FRAMES of microphone, let
    go, and return the bus's PTT stop of the press."""
    mark = stack.log.mark
    box = await page.locator("#ptt").bounding_box()
    assert box is not None
    await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    await page.mouse.down()
    start = await stack.log.wait("audio.ptt", lambda p: p["action"] == "start", after=mark)
    assert start["source"] == "web"
    await page.wait_for_function(
        f"Number(document.querySelector('#mic-sent').dataset.frames) >= {PRESS_FRAMES}", timeout=PAGE_WAIT_MS
    )
    await page.mouse.up()
    return await stack.log.wait(
        "audio.ptt", lambda p: p["action"] == "stop" and p["press_id"] == start["press_id"], after=mark
    )


async def test_hold_to_talk_asks_the_time_and_the_page_plays_the_answer(web_stack: WebStack, tmp_path: Path):
    stack = web_stack
    async with async_playwright() as pw:
        browser = await launch_chromium(pw, marker_mic(tmp_path / "mic.wav", "1"))
        meter_lit: asyncio.Task[Any] | None = None
        try:
            page = await browser.new_page()
            await page.add_init_script(RECORD_BODY)
            await page.goto(await stack.page_url())
            await page.wait_for_selector("body[data-conn=connected]", timeout=PAGE_WAIT_MS)
            await page.wait_for_selector("body[data-state=CONVERSING]", timeout=PAGE_WAIT_MS)
            assert await page.evaluate(TRANSCRIPT) == []

            mark = stack.log.mark
            stop = await hold_to_talk(page, stack)
            assert stop["frames"] >= PRESS_FRAMES
            # The answer starts after the release; the meter is watched from here on.
            meter_lit = asyncio.create_task(page.wait_for_function(METER_LIT, timeout=PAGE_WAIT_MS))

            # What the person sees: their question, then the two answers.
            lines = await transcript_lines(page, 3)
            assert lines[0] == f"user: {QUESTION}", lines
            assert lines[1] == f"assistant: {ACK}", lines
            answer = re.fullmatch(r"assistant: It is (\d\d:\d\d [AP]M)\.", lines[2])
            assert answer, lines

            # The time spoken is the one the system skill returned to the model.
            outputs = [o["output"] for o in stack.tool_outputs()]
            assert outputs and outputs[0]["time"] == answer.group(1), outputs
            await stack.turn_ended(after=mark)

            # What the person hears: the page played all of both phrases, and
            # its speaker meter lit up while it did.
            heard_ms = spoken_ms(ACK) + spoken_ms(f"It is {answer.group(1)}.")
            await meter_lit
            await page.wait_for_function(
                f"Number(document.querySelector('#played').dataset.ms) >= {heard_ms - 40}",
                timeout=PAGE_WAIT_MS,
            )
            await page.wait_for_function(f"!({METER_LIT})", timeout=PAGE_WAIT_MS)  # and went dark at the end

            # DIALOG is given back: in focus itself and on the page's focus panel.
            async def dialog_free() -> bool:
                return not (await stack.focus_snapshot()).channels.get(Channel.DIALOG)

            await until(dialog_free, what="DIALOG released")
            await page.wait_for_selector(
                '.channel[data-channel="dialog"] li', state="detached", timeout=PAGE_WAIT_MS
            )

            # The page showed the model speaking, then not, and stayed CONVERSING.
            try:
                await page.wait_for_function(SPOKE_THEN_QUIET, timeout=PAGE_WAIT_MS)
            except PlaywrightTimeout:
                raise AssertionError(f"the page's body: {await page.evaluate('window.__seen')}") from None
            seen: list[dict[str, str | None]] = await page.evaluate("window.__seen")
            assert seen[-1]["state"] == "CONVERSING", seen
            assert await page.evaluate(TRANSCRIPT) == lines  # nothing more was said
            # Only the answer was played: no phrase twice, no silence streamed.
            played_ms = int(await page.evaluate("document.querySelector('#played').dataset.ms"))
            assert heard_ms - 40 <= played_ms <= heard_ms + 100, (played_ms, heard_ms)
        finally:
            if meter_lit is not None and not meter_lit.done():
                meter_lit.cancel()
            await browser.close()
