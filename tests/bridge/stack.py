"""The bridge service over the real bus, for tests: real focus, storage,
skill-host and audio-io (file backend) in this process, the bridge talking
through the real `openai` client to the simulator. The test plays the
edge's part for PTT and the mic (what audio-io publishes when a button is
held) and listens to what the bridge puts on the bus."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from nats.aio.client import Client
from pydantic import BaseModel

from huxley_audio_io.service import AudioService
from huxley_audio_io.settings import AudioSettings
from huxley_bridge.service import BridgeService
from huxley_bridge.settings import BridgeSettings
from huxley_focus.service import FocusService
from huxley_focus.settings import FocusSettings
from huxley_realtime_sim import SimServer, marker_pcm, parse_rules
from huxley_realtime_sim.voice import ToneVoice
from huxley_runtime.rpc import request
from huxley_runtime.settings import HuxleySettings
from huxley_skill_host.service import SkillHostService
from huxley_skill_host.settings import SkillHostSettings
from huxley_storage.service import StorageService
from huxley_storage.settings import StorageSettings
from huxley_wire.audio import AudioFrame, decode_frame, encode_frame, frames_of, now_us
from huxley_wire.codec import decode, encode
from huxley_wire.messages import audio as am
from huxley_wire.messages import bridge as bm
from huxley_wire.messages.common import HealthRequest
from huxley_wire.subjects import Subjects
from support.services import running
from support.waiting import until

VOICE = ToneVoice()
RULES = """
speed: 0
chunk_ms: 100
default: {say: "I heard you."}
follow_up: {say: "Done."}
rules:
  - name: time
    marker: "1"
    transcript: "What time is it?"
    say: "One moment."
    tools: [{name: get_current_time}]
    then: "It is {output.time}."
  - name: long
    marker: "2"
    transcript: "Tell me a story."
    say: "once upon a time there was a very long story that went on and on and on and on"
    speed: 1.0
"""


class Heard[M: BaseModel]:
    """Every message on one subject, decoded, and a way to wait for one."""

    def __init__(self, model: type[M]) -> None:
        self.model = model
        self.items: list[M] = []
        self._changed = asyncio.Condition()

    @classmethod
    async def on(cls, nc: Client, subject: str, model: type[M]) -> Heard[M]:
        heard = cls(model)
        await nc.subscribe(subject, cb=heard._take)
        await nc.flush()
        return heard

    async def _take(self, msg: Any) -> None:
        if self.model is am.PlayedEvent:  # a PlayedBatch is one PlayedEvent per stream
            self.items.extend(cast(list[M], am.decode_played(msg.data)))
        else:
            self.items.append(decode(msg.data, self.model))
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, accept: Callable[[M], bool], count: int = 1, timeout: float = 15.0) -> M:
        """The `count`-th message that `accept` takes."""

        def taken() -> list[M]:
            return [item for item in self.items if accept(item)]

        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(taken()) >= count)
        return taken()[count - 1]


@dataclass
class Stack:
    nc: Client
    subjects: Subjects
    sim: SimServer
    bridge: BridgeService
    speaker: Path
    out: dict[str, bytearray]
    messages: dict[str, list[tuple[int, int]]]  # per output stream: (seq, PCM bytes) of each message
    turns: Heard[bm.TurnEvent]
    audio_io: AudioService

    async def press(self, marker: str, press_id: str) -> None:
        """What audio-io publishes for a press: PTT start, the mic frames, PTT stop."""
        start = now_us()
        await self.publish(
            self.subjects.audio_ptt(), am.PttEvent(action="start", press_id=press_id, ts_us=start)
        )
        frames = frames_of(marker_pcm(marker))
        for seq, pcm in enumerate(frames):
            frame = AudioFrame(press_id, seq, now_us(), pcm)
            await self.nc.publish(self.subjects.audio_mic_assistant(), encode_frame(frame))
        held = max(len(frames) * 20_000, 300_000)
        stop = am.PttEvent(action="stop", press_id=press_id, ts_us=start + held, frames=len(frames))
        await self.publish(self.subjects.audio_ptt(), stop)

    async def ask_the_time(self, press_id: str = "p1") -> bm.TurnEvent:
        """One whole turn of the `time` rule (a tool call and two answers), once the tool is offered."""
        await wait_tools(self, "get_current_time")
        await self.press("1", press_id)
        return await self.wait_turn("ended")

    async def publish(self, subject: str, message: Any) -> None:
        await self.nc.publish(subject, encode(message))

    async def wait_turn(self, phase: str, count: int = 1, timeout: float = 15.0) -> bm.TurnEvent:
        return await self.turns.wait_for(lambda t: t.phase == phase, count, timeout)

    async def snapshot(self) -> bm.BridgeSnapshot:
        return await request(self.nc, self.subjects.bridge_rpc(), bm.BridgeSnapshotRequest())


def settings_of[S: HuxleySettings](cls: type[S], base: HuxleySettings, **extra: Any) -> S:
    return cls(**base.model_dump(exclude={"nats_password", "nats_token"}), **extra, _env_file=None)  # type: ignore[call-arg]


@contextlib.asynccontextmanager
async def stack_of(
    nc: Client,
    settings: HuxleySettings,
    tmp_path: Path,
    *,
    rules: str = RULES,
    skills: str = "system",
    audio: dict[str, Any] | None = None,
    **bridge: Any,
) -> AsyncIterator[Stack]:
    async with (
        running(FocusService, settings_of(FocusSettings, settings)),
        stack_without_focus(
            nc, settings, tmp_path, rules=rules, skills=skills, audio=audio, **bridge
        ) as stack,
    ):
        adapter = stack.bridge.adapter
        if adapter is not None and adapter.lifecycle.state not in ("budget", "offline"):
            await wait_ready(stack)  # focus fires injects from here on
        yield stack


@contextlib.asynccontextmanager
async def stack_without_focus(
    nc: Client,
    settings: HuxleySettings,
    tmp_path: Path,
    *,
    rules: str = RULES,
    skills: str = "system",
    audio: dict[str, Any] | None = None,
    **bridge: Any,
) -> AsyncIterator[Stack]:
    """Everything but focus (the caller runs it, to stop and start it at will)."""
    subjects = Subjects(settings.site)
    speaker = tmp_path / "speaker.wav"
    out: dict[str, bytearray] = {}
    messages: dict[str, list[tuple[int, int]]] = {}

    async def on_out(msg: Any) -> None:
        frame = decode_frame(msg.data)
        out.setdefault(frame.stream, bytearray()).extend(frame.pcm)
        messages.setdefault(frame.stream, []).append((frame.seq, len(frame.pcm)))

    await nc.subscribe(subjects.audio_out_owned_all(), cb=on_out)
    turns = await Heard.on(nc, subjects.bridge_event("turn"), bm.TurnEvent)
    async with (
        SimServer(parse_rules(rules), voice=VOICE) as sim,
        running(StorageService, settings_of(StorageSettings, settings)),
        running(
            AudioService,
            settings_of(
                AudioSettings, settings, **(audio or {"audio_backend": "file", "audio_file_out": speaker})
            ),
        ) as audio_io,
        running(SkillHostService, settings_of(SkillHostSettings, settings, skills=skills)),
        running(
            BridgeService, settings_of(BridgeSettings, settings, realtime_url=sim.url, **bridge)
        ) as service,
    ):
        if service.adapter is not None and service.adapter.lifecycle.state != "budget":
            await sim.wait_connections(1)
        yield Stack(nc, subjects, sim, service, speaker, out, messages, turns, audio_io)


async def wait_ready(s: Stack) -> None:
    """Focus hears the bridge renew ready (its model session is up)."""

    async def ready() -> bool:
        health = await request(s.nc, s.subjects.health("focus"), HealthRequest())
        return health.detail.get("bridge") == "renewing"

    await until(ready, 10, "focus to hear the bridge ready")


async def wait_tools(s: Stack, name: str) -> None:
    async def offered() -> bool:
        return name in (await s.snapshot()).tools

    await until(offered, 10, f"the bridge to offer {name}")
