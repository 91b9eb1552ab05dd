"""A local loop for phase-1 tests: the real coordinator and lifecycle, the
real `ModelSession` (openai client) against the real simulator. Where the
bus adapter will talk to focus, audio-io and skill-hosts, this loop answers
the coordinator's requests itself (grant every acquire, play every frame at
once, run tools as plain functions) and records what reached the "speaker".
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from huxley_bridge import commands as c
from huxley_bridge import events as e
from huxley_bridge.coordinator import CoordinatorConfig, TurnCoordinator
from huxley_bridge.instructions import Voice
from huxley_bridge.lifecycle import (
    Close,
    Connect,
    LifecycleConfig,
    SessionLifecycle,
    StoreSummary,
    ToolsUpdated,
)
from huxley_bridge.model import ModelEndpoint, ModelSession, ModelUnavailable
from huxley_bridge.tools import ToolRegistry
from huxley_wire.audio import BYTES_PER_MS
from huxley_wire.messages.skills import Manifest, SkillManifest, ToolManifest, ToolReply

Tool = Callable[[dict[str, Any]], ToolReply]
DAY = "2026-11-22"


@dataclass
class Speaker:
    streams: dict[str, bytearray] = field(default_factory=dict)

    def audio(self, stream: str) -> bytes:
        return bytes(self.streams.get(stream, b""))


class LocalLoop:
    def __init__(self, url: str, tools: dict[str, tuple[str, Tool]], **config: Any) -> None:
        self.session = ModelSession(ModelEndpoint("gpt-realtime", "sk-test", url))
        self.core = TurnCoordinator(CoordinatorConfig(lead_ms=600_000, **config))
        registry = ToolRegistry()
        self.lifecycle = SessionLifecycle(LifecycleConfig(), Voice("Be brief.", "alloy", "en"), registry)
        self.tools = tools
        skills: dict[str, list[ToolManifest]] = {}
        for name, (skill, _) in tools.items():
            skills.setdefault(skill, []).append(
                ToolManifest(name=name, description=name, parameters={"type": "object"})
            )
        self.manifest = Manifest(
            host="host-1", persona="basic", skills=[SkillManifest(name=s, tools=t) for s, t in skills.items()]
        )
        self.speaker = Speaker()
        self.log: list[c.Command] = []
        self.ended: list[c.EndTurn] = []
        self.summaries: list[str] = []
        self.turn_done = asyncio.Event()
        self._heard = asyncio.Condition()
        self.connected = asyncio.Event()
        self.disconnected = asyncio.Event()
        self._queue: asyncio.Queue[e.Event] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._activities = 0

    # -- running ----------------------------------------------------------------------------------
    async def __aenter__(self) -> LocalLoop:
        await self._life(self.lifecycle.manifest(self.manifest, time.monotonic()))
        self._spawn(self._run())
        await self._life(self.lifecycle.start(time.monotonic(), DAY))
        await asyncio.wait_for(self.connected.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.session.close()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def put(self, event: e.Event) -> None:
        self._queue.put_nowait(event)

    async def _run(self) -> None:
        while True:
            deadlines = [
                d for d in (self.core.next_deadline(), self.lifecycle.next_deadline()) if d is not None
            ]
            timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            try:
                event: e.Event = await asyncio.wait_for(self._queue.get(), timeout)
            except TimeoutError:
                event = e.Tick()
            now = time.monotonic()
            if isinstance(event, e.Tick):
                await self._life(self.lifecycle.tick(now, DAY, busy=self.core.turn is not None))
            if isinstance(event, e.ResponseDone) and event.usage:
                await self._life(self.lifecycle.usage(event.usage, DAY))
            if isinstance(event, e.UserTranscript | e.AssistantTranscript):
                self.lifecycle.heard(
                    "user" if isinstance(event, e.UserTranscript) else "assistant", event.text
                )
            await self._execute(self.core.handle(event, now))

    async def _read_model(self) -> None:
        async for event in self.session.events():
            self.put(event)
        self.put(e.ModelDisconnected("socket closed"))
        await self._life(self.lifecycle.dropped(time.monotonic(), "socket closed"))
        self.connected.clear()
        self.disconnected.set()

    # -- the lifecycle's commands -------------------------------------------------------------------
    async def _life(self, commands: list[Any]) -> None:
        for cmd in commands:
            match cmd:
                case Connect():
                    try:
                        await self.session.connect()
                    except ModelUnavailable as exc:
                        await self._life(self.lifecycle.connect_failed(time.monotonic(), str(exc)))
                        continue
                    await self._life(self.lifecycle.connect_ok(time.monotonic()))
                    self.put(e.ModelConnected())
                    self.disconnected.clear()
                    self.connected.set()
                    self._spawn(self._read_model())
                case Close():
                    await self.session.close()
                case StoreSummary(text=text):
                    self.summaries.append(text)
                case ToolsUpdated(tools=tools):
                    self.put(e.ToolsChanged(tools))
                case c.SendModel(event=event):
                    await self.session.send(event)
                case _:
                    pass

    # -- the coordinator's commands --------------------------------------------------------------------
    async def _execute(self, commands: list[c.Command]) -> None:
        for cmd in commands:
            self.log.append(cmd)
            match cmd:
                case c.SendModel(event=event):
                    await self.session.send(event)
                case c.AppendAudio(pcm=pcm):
                    await self.session.append_audio(pcm)
                case c.PublishAudio(stream_id=stream, pcm=pcm, eos=eos):
                    heard = self.speaker.streams.setdefault(stream, bytearray())
                    heard += pcm
                    self.put(e.Played(stream, len(heard) / BYTES_PER_MS, drained=eos))
                    async with self._heard:
                        self._heard.notify_all()
                case c.Interrupt(token=token):
                    self.put(e.InterruptDone(token))
                case c.AcquireDialog(turn_id=turn_id):
                    self._activities += 1
                    self.put(e.DialogAcquired(turn_id, f"a{self._activities}"))
                case c.ClearAudio(token=token):
                    self.put(e.AudioCleared(token))
                case c.CallTool(call_id=call_id, tool=tool, args=args):
                    self.put(e.ToolDone(call_id, self.tools[tool][1](args)))
                case c.EndTurn(turn_id=turn_id):
                    self.ended.append(cmd)
                    self.put(e.TurnEndDone(turn_id))
                    self.turn_done.set()
                case _:
                    pass

    # -- test helpers ------------------------------------------------------------------------------------
    async def wait_turn_end(self, count: int = 1, timeout: float = 15.0) -> c.EndTurn:
        async with asyncio.timeout(timeout):
            while len(self.ended) < count:
                self.turn_done.clear()
                await self.turn_done.wait()
        return self.ended[count - 1]

    async def wait_heard(self, stream: str, nbytes: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout), self._heard:
            await self._heard.wait_for(lambda: len(self.speaker.audio(stream)) >= nbytes)

    async def press(self, pcm: bytes, press_id: str = "p1", frame_bytes: int = 960) -> None:
        """Hold PTT while `pcm` is "spoken" in 20 ms frames, then let go."""
        self.put(e.PttStart(press_id, 0))
        for start in range(0, len(pcm), frame_bytes):
            self.put(e.MicAudio(pcm[start : start + frame_bytes]))
        held_us = max(200_000, int(len(pcm) / BYTES_PER_MS * 1000))
        self.put(e.PttStop(press_id, held_us))
