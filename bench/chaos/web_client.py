"""The household's web client: a WebSocket client of audio-io's gateway that
stays connected (it reconnects when audio-io restarts), counts the audio it
receives, and presses the talk button with a DTMF key as the voice."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from huxley_realtime_sim import marker_pcm

CHUNK_MS = 40
BYTES_PER_MS = 48  # PCM16 24 kHz mono


@dataclass
class WebClient:
    url: str
    received: Counter[str] = field(default_factory=Counter)  # message type -> count
    audio_bytes: int = 0
    connects: int = 0
    presses: int = 0
    failed_presses: int = 0
    last_audio_at: float = 0.0
    _ws: ClientConnection | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def audio_s(self) -> float:
        return self.audio_bytes / BYTES_PER_MS / 1000

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="web-client")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                async with connect(self.url, max_size=2**22, open_timeout=3) as ws:
                    self._ws = ws
                    self.connects += 1
                    async for raw in ws:
                        self._take(raw)
            except (OSError, WebSocketException, TimeoutError):
                pass
            self._ws = None
            await asyncio.sleep(0.3)

    def _take(self, raw: str | bytes) -> None:
        try:
            message: dict[str, Any] = json.loads(raw)
        except ValueError:
            self.received["<not json>"] += 1
            return
        kind = str(message.get("type"))
        self.received[kind] += 1
        if kind == "audio":
            with contextlib.suppress(ValueError, TypeError):
                self.audio_bytes += len(base64.b64decode(message["data"]))
                self.last_audio_at = time.monotonic()

    async def send(self, message: dict[str, Any]) -> bool:
        ws = self._ws
        if ws is None:
            return False
        try:
            await ws.send(json.dumps(message))
        except (OSError, WebSocketException):
            return False
        return True

    async def press(self, key: str, hold_ms: int = 600) -> bool:
        """Hold the talk button and "say" a key, in real time; False when the
        gateway was not there for all of it."""
        pcm = marker_pcm(key, lead_ms=100, tail_ms=max(60, hold_ms - 240))
        ok = await self.send({"type": "ptt_start"})
        step = CHUNK_MS * BYTES_PER_MS
        for at in range(0, len(pcm), step):
            chunk = pcm[at : at + step]
            ok = await self.send({"type": "audio", "data": base64.b64encode(chunk).decode()}) and ok
            await asyncio.sleep(CHUNK_MS / 1000)
        ok = await self.send({"type": "ptt_stop"}) and ok
        self.presses += 1
        if not ok:
            self.failed_presses += 1
        return ok
