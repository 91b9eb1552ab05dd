"""What the bridge says reaches the client, end to end: the bridge with the
simulator, focus, storage, a skill-host and audio-io's web gateway on a real
nats-server, a real WebSocket client and the real page in Chromium. A tool
call shows as `dev_event tool_call`; the assistant's live text comes as
`transcript_delta` frames and its whole line as `transcript` (same item);
offline mode (no key, the simulator) is said in the session event and shown
as a badge on the page."""

from __future__ import annotations

import json
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import websockets
from bridge.stack import Stack, stack_of, wait_tools
from nats.aio.client import Client
from playwright.async_api import async_playwright

from audio.conftest import WebClient, client_url
from huxley_runtime.settings import HuxleySettings
from support.browser import launch_chromium

WEB = {"audio_backend": "web", "web_host": "127.0.0.1", "web_port": 0}


@pytest.fixture
async def stack(nc: Client, settings: HuxleySettings, tmp_path: Path) -> AsyncIterator[Stack]:
    async with stack_of(nc, settings, tmp_path, audio=WEB, openai_api_key=None) as s:
        await wait_tools(s, "get_current_time")
        yield s


async def frames_until_final(client: WebClient) -> list[dict[str, Any]]:
    """Every frame up to the assistant's second whole line ("It is …")."""
    seen: list[dict[str, Any]] = []
    lines = 0
    while lines < 2:
        message = await client.next(timeout=20)
        seen.append(message)
        if message["type"] == "transcript" and message["role"] == "assistant":
            lines += 1
    return seen


async def test_tool_calls_and_live_text_reach_the_client(stack: Stack) -> None:
    async with websockets.connect(client_url(stack.audio_io)) as ws:
        client = WebClient(ws)
        await client.next("input_mode")
        await stack.press("1", "p1")  # "What time is it?": "One moment.", get_current_time, "It is …"
        seen = await frames_until_final(client)

    calls = [m["payload"] for m in seen if m["type"] == "dev_event" and m["kind"] == "tool_call"]
    assert len(calls) == 1
    call = calls[0]
    assert call["name"] == "get_current_time" and call["skill"] == "system" and call["action"] is None
    assert "time" in json.loads(call["output"]) and call["error"] is None and call["turn_id"]
    assert call["has_audio_stream"] is False

    finals = [m for m in seen if m["type"] == "transcript" and m["role"] == "assistant"]
    assert finals[0]["text"] == "One moment." and finals[1]["text"].startswith("It is ")
    for final in finals:  # each whole line is its deltas joined, and comes after them
        deltas = [m for m in seen if m["type"] == "transcript_delta" and m["item_id"] == final["item_id"]]
        assert len(deltas) > 1 and "".join(d["delta"] for d in deltas) == final["text"]
        assert seen.index(deltas[-1]) < seen.index(final)
    # The tool's output went to the model before the answer that used it was spoken.
    first_answer_delta = next(
        m for m in seen if m["type"] == "transcript_delta" and m["item_id"] == finals[1]["item_id"]
    )
    assert seen.index(next(m for m in seen if m.get("kind") == "tool_call")) < seen.index(first_answer_delta)


def silent_mic(path: Path) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(48_000)
        wav.writeframes(np.zeros(48_000, dtype="<i2").tobytes())
    return path


@pytest.mark.browser
async def test_the_page_shows_offline_mode_and_the_live_text(stack: Stack, tmp_path: Path) -> None:
    async with websockets.connect(client_url(stack.audio_io)) as ws:  # a client that hears the handshake
        hello = WebClient(ws)
        session = await hello.next("dev_event", kind="session")
        assert session["payload"]["offline"] is True and session["payload"]["simulated"] is True
    port = stack.audio_io.backend.port  # type: ignore[attr-defined]
    async with async_playwright() as pw:
        browser = await launch_chromium(pw, silent_mic(tmp_path / "mic.wav"))
        try:
            page = await browser.new_page()
            await page.goto(f"http://127.0.0.1:{port}/")
            badge = page.locator("#offline")
            await badge.wait_for(state="visible", timeout=10_000)
            assert await badge.text_content() == "offline mode (simulator)"
            assert await page.evaluate("document.body.dataset.offline") == "true"
            box = await badge.bounding_box()
            assert box is not None and box["width"] > 40 and box["height"] > 10  # really shown

            await page.evaluate("""
              window.__live = [];
              new MutationObserver(() => {
                for (const li of document.querySelectorAll('#transcript-list li[data-live="true"]'))
                  window.__live.push(li.lastChild.textContent);
              }).observe(document.querySelector('#transcript-list'),
                         {subtree: true, childList: true, characterData: true});
            """)
            await stack.press("1", "p-page")
            answer = page.locator('#transcript-list li[data-live="false"]', has_text="It is ")
            await answer.wait_for(timeout=20_000)
            live: list[str] = await page.evaluate("window.__live")
            # The line grew while it was spoken: partial texts shorter than the final one.
            final = (await answer.text_content() or "").removeprefix("assistant: ")
            assert any(0 < len(text) < len(final) and final.startswith(text) for text in live), (live, final)
        finally:
            await browser.close()
