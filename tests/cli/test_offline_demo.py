"""The offline demo as a newcomer tries it (issue 14): `huxley up` without an
OpenAI key, the web client's WebSocket, a press with a keypad tone for "set a
timer", the time, the doorbell from the page, and the timer heard once —
its own prompt no longer sets a new timer, so nothing follows it — and the
demo book that `huxley up` speaks into the empty library plays."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import subprocess
import time
from typing import Any

import nats
import pytest
import websockets
from nats.aio.msg import Msg

from huxley_cli.auth import AuthStore
from huxley_cli.natsserver import free_port
from huxley_realtime_sim import marker_pcm
from huxley_runtime.storage_client import SettingsClient
from huxley_wire.permissions import harness_identity
from huxley_wire.subjects import Subjects
from support.services import REPO
from support.up import HUXLEY, MARK_VAR, running_up
from support.waiting import until

TIMER_HEARD = "Hey, your timer went off: 10 seconds are up."


async def press(ws: websockets.ClientConnection, key: str) -> None:
    """Hold the button while a keypad tone plays into the mic, as a phone held to it would."""
    await ws.send(json.dumps({"type": "ptt_start"}))
    pcm = marker_pcm(key, lead_ms=100, tail_ms=400)
    for start in range(0, len(pcm), 1920):  # 40 ms chunks, about as a browser sends them
        chunk = pcm[start : start + 1920]
        await ws.send(json.dumps({"type": "audio", "data": base64.b64encode(chunk).decode()}))
        await asyncio.sleep(0.04)  # pacing, not synchronisation
    await ws.send(json.dumps({"type": "ptt_stop"}))


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_the_offline_household(tmp_path, site):
    port, web = free_port(), free_port()
    data = tmp_path / "data"
    env = {
        **os.environ,
        "HUXLEY_SITE": site,
        "HUXLEY_DATA_DIR": str(data),
        "HUXLEY_NATS_PORT": str(port),
        "HUXLEY_WEB_PORT": str(web),
        "PYTHONUNBUFFERED": "1",
        MARK_VAR: secrets.token_hex(8),
    }
    for name in ("HUXLEY_NATS_URL", "OPENAI_API_KEY", "MAKEFLAGS"):
        env.pop(name, None)
    up_log = tmp_path / "up.log"
    subjects = Subjects(site)
    with running_up([*HUXLEY, "up"], env, up_log) as up:
        await until((data / "run" / "nats.url").exists, 60, "huxley up to start nats-server")
        status = subprocess.run(
            [*HUXLEY, "status", "--wait", "30"], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
        )
        assert status.returncode == 0, status.stdout + up_log.read_text()
        assert "OFFLINE MODE" in up_log.read_text()

        # The bus admits only credentials; the test listens and reads storage as
        # the harness of this site, minted from `huxley up`'s own keys.
        harness = harness_identity(site)
        creds = AuthStore.of(data).ensure(harness, int(time.time()))
        nc = await nats.connect(
            f"nats://127.0.0.1:{port}", user_credentials=str(creds), inbox_prefix=harness.inbox_prefix
        )
        said: list[str] = []
        set_timer_calls: list[dict[str, Any]] = []

        async def on_transcript(msg: Msg) -> None:
            event = json.loads(msg.data)
            if event["role"] == "assistant":
                said.append(event["text"])

        async def on_tool_call(msg: Msg) -> None:
            call = json.loads(msg.data)
            if call.get("tool") == "set_timer":
                set_timer_calls.append(call)

        await nc.subscribe(subjects.bridge_event("transcript"), cb=on_transcript)
        await nc.subscribe(subjects.skill_tool("timers"), cb=on_tool_call)
        await nc.flush()
        try:
            async with websockets.connect(f"ws://127.0.0.1:{web}/ws") as ws:
                await press(ws, "2")  # "Set a timer for ten seconds."
                await until(lambda: "Timer set for 10 seconds." in said, 30, "the timer to be set")
                await press(ws, "1")  # "What time is it?"
                await until(lambda: any(s.startswith("It's ") for s in said), 30, "the time")
                await ws.send(json.dumps({"type": "client_event", "event": "doorbell.ring", "data": {}}))
                await until(lambda: "Someone is at the door." in said, 30, "the doorbell")
                await until(lambda: TIMER_HEARD in said, 40, "the timer to be heard")
                timers = SettingsClient(nc, subjects, "basic", "timers")
                await asyncio.sleep(12)  # a bound past the 10 s a looping timer would take to fire again
                assert said.count(TIMER_HEARD) == 1, said
                assert [call["args"] for call in set_timer_calls] == [
                    {"seconds": 10, "message": "10 seconds are up"}
                ]
                assert await timers.list_settings("timer:") == []

                # "Play the book": the library started empty, `huxley up` spoke
                # a demo book into it, and the audiobooks skill streams it.
                assert (data / "basic" / "audiobooks" / "Huxley" / "The Book.wav").exists()
                book_frames: list[str] = []

                async def on_book_frame(msg: Msg) -> None:
                    book_frames.append(msg.subject)

                await nc.subscribe(subjects.audio_out_owned("skill-host"), cb=on_book_frame)
                await press(ws, "3")  # "Play the book."
                await until(lambda: "Here's your book." in said, 30, "the book to be announced")
                await until(lambda: len(book_frames) >= 10, 30, "the book to stream")
        finally:
            await nc.close()
    assert "huxley: stopped" in up.output(), up.output()
    assert not up.leftovers, f"processes left behind: {up.leftovers}"
