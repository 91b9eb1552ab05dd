"""The whole system for one end-to-end test: storage, focus, a skill-host,
audio-io (the file backend: its speaker is a WAV file) and the realtime
bridge, each its own process on the session's nats-server, with the local
Realtime simulator (in this process, so the test reads what the bridge sent
it) as the model."""

from __future__ import annotations

import asyncio
import functools
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from nats.aio.client import Client
from nats.aio.msg import Msg

from e2e.rig_audio import press_subject
from e2e.speaker import read_speaker
from huxley_realtime_sim import SimServer, marker_pcm
from huxley_runtime.bus import settle
from huxley_runtime.rpc import request
from huxley_wire.codec import encode
from huxley_wire.errors import WireError
from huxley_wire.messages.audio import decode_played
from huxley_wire.messages.bridge import BridgeSnapshot, BridgeSnapshotRequest
from huxley_wire.messages.common import Health, HealthRequest
from huxley_wire.messages.focus import Snapshot, SnapshotRequest
from huxley_wire.messages.skills import ClientEvent, ToolCall
from huxley_wire.subjects import Subjects
from support.services import ServiceProcess
from support.waiting import WAIT_S, until

PERSONA = "e2e"

# The order matters only for stopping: the bridge first, so nothing new starts.
SERVICES = {
    "storage": "huxley_storage",
    "focus": "huxley_focus",
    "skill-host": "huxley_skill_host",
    "audio-io": "e2e.rig_audio",
    "realtime-bridge": "huxley_bridge",
}


@dataclass
class Event:
    subject: str  # without the site prefix, e.g. "bridge.event.turn"
    body: dict[str, Any]


@dataclass
class BusLog:
    """The events the tests reason about, in arrival order."""

    events: list[Event] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def start(self, nc: Client, subjects: Subjects) -> BusLog:
        prefix = subjects.prefix + "."

        played = subjects.audio_played()

        async def keep(msg: Msg) -> None:
            subject = msg.subject.removeprefix(prefix)
            # A PlayedBatch is kept as one PlayedEvent per stream, as it means.
            bodies = (
                [p.model_dump(mode="json") for p in decode_played(msg.data)]
                if msg.subject == played
                else [json.loads(msg.data)]
            )
            async with self.changed:
                self.events.extend(Event(subject, body) for body in bodies)
                self.changed.notify_all()

        for subject in (
            subjects.bridge_events(),
            subjects.focus_events(),
            subjects.audio_ptt(),
            subjects.audio_played(),
        ):
            await nc.subscribe(subject, cb=keep)
        await settle(nc)
        return self

    @property
    def mark(self) -> int:
        return len(self.events)

    def matching(self, subject: str, where: Callable[[dict[str, Any]], bool], after: int = 0) -> list[Event]:
        return [e for e in self.events[after:] if e.subject == subject and where(e.body)]

    async def wait(
        self,
        subject: str,
        where: Callable[[dict[str, Any]], bool] = lambda body: True,
        *,
        after: int = 0,
        timeout: float = WAIT_S,
    ) -> dict[str, Any]:
        try:
            async with asyncio.timeout(timeout), self.changed:
                await self.changed.wait_for(lambda: bool(self.matching(subject, where, after)))
        except TimeoutError:
            raise AssertionError(f"no {subject} as expected within {timeout} s\n{self.tail()}") from None
        return self.matching(subject, where, after)[0].body

    def tail(self, count: int = 40) -> str:
        shown = [e for e in self.events if e.subject != "audio.played"][-count:]
        return "recent events:\n" + "\n".join(f"  {e.subject} {json.dumps(e.body)[:300]}" for e in shown)


@dataclass
class Stack:
    nc: Client
    site: str
    root: Path  # the test's tmp_path
    sim: SimServer
    env: dict[str, str]
    log: BusLog
    procs: dict[str, ServiceProcess] = field(default_factory=dict)
    services: ClassVar[dict[str, str]] = SERVICES  # name -> module, started in this order

    @property
    def subjects(self) -> Subjects:
        return Subjects(self.site)

    @property
    def speaker_path(self) -> Path:
        return self.root / "speaker.wav"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    # -- bring-up ----------------------------------------------------------------------
    def start(self, overrides: dict[str, dict[str, str]] | None = None) -> None:
        overrides = overrides or {}
        for name, module in self.services.items():
            env = {**self.env, **overrides.get(name, {})}
            self.procs[name] = ServiceProcess(module, env, self.root / "logs" / f"{name}.log").start()

    async def health(self, service: str) -> Health | None:
        try:
            return await request(self.nc, self.subjects.health(service), HealthRequest(), timeout=1.0)
        except WireError:
            return None

    async def wait_ready(self, *, tools: set[str], skills: set[str]) -> None:
        """Every service healthy, every skill serving, and the model session
        up with the tools the rules use."""

        async def ok(service: str, accept: Callable[[Health], bool] = lambda h: True) -> bool:
            proc = self.procs[service]
            assert proc.alive(), f"{service} exited:\n{proc.output()[-3000:]}"
            health = await self.health(service)
            return health is not None and health.status == "ok" and accept(health)

        def serving(health: Health) -> bool:
            states = health.detail.get("skills", {})
            return all(states.get(s, {}).get("status") == "ok" for s in skills)

        try:
            for service in ("storage", "focus", "audio-io"):
                await until(functools.partial(ok, service), what=f"{service} healthy")
            await until(lambda: ok("skill-host", serving), what="skills serving")
            await until(lambda: ok("realtime-bridge", _wired), what="the bridge wired")
            await until(lambda: self.declared_tools() >= tools, what="tools declared to the model")
        except AssertionError as exc:
            raise AssertionError(f"the stack did not come up: {exc}\n{self.outputs()}") from None

    def declared_tools(self) -> set[str]:
        tools: set[str] = set()
        for conn in self.sim.connections.values():
            tools |= conn.conversation.declared_tools
        return tools

    # -- driving it --------------------------------------------------------------------
    async def press(self, key: str, *, hold_ms: int = 400) -> int:
        """Hold PTT and "say" a DTMF key into the mic (in real time); returns the
        ms fed, once the button is up again."""
        pcm = marker_pcm(key, lead_ms=100, tail_ms=max(60, hold_ms - 240))
        reply = await self.nc.request(press_subject(self.site), pcm, timeout=WAIT_S)
        fed_ms: int = json.loads(reply.data)["fed_ms"]
        return fed_ms

    async def call_tool(self, skill: str, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        call = ToolCall(call_id=f"c-e2e-{tool}", tool=tool, args=args)
        reply = await self.nc.request(self.subjects.skill_tool(skill), encode(call), timeout=10)
        result: dict[str, Any] = json.loads(reply.data)
        return result

    async def client_event(self, event: str, data: dict[str, Any] | None = None) -> None:
        """What audio-io publishes when the web client sends a `client_event`."""
        await self.nc.publish(
            self.subjects.client_events(), encode(ClientEvent(event=event, data=data or {}))
        )

    async def focus_snapshot(self) -> Snapshot:
        return await request(self.nc, self.subjects.focus_rpc_of("bridge"), SnapshotRequest(), timeout=2.0)

    async def bridge_snapshot(self) -> BridgeSnapshot:
        return await request(self.nc, self.subjects.bridge_rpc(), BridgeSnapshotRequest(), timeout=2.0)

    async def turn_ended(self, *, after: int, kind: str = "user") -> dict[str, Any]:
        return await self.log.wait(
            "bridge.event.turn", lambda t: t["phase"] == "ended" and t["kind"] == kind, after=after
        )

    async def drained(self, stream_id: str, *, after: int = 0) -> dict[str, Any]:
        return await self.log.wait(
            "audio.played", lambda p: p["stream_id"] == stream_id and p["drained"], after=after
        )

    async def played_at_least(self, stream_id: str, ms: float, *, after: int = 0) -> dict[str, Any]:
        return await self.log.wait(
            "audio.played", lambda p: p["stream_id"] == stream_id and p["played_ms"] >= ms, after=after
        )

    def played_ms(self, stream_id: str) -> float:
        """The latest played count audio-io reported for a stream."""
        reports = [e.body["played_ms"] for e in self.log.events if e.body.get("stream_id") == stream_id]
        return max(reports, default=0.0)

    def sent(self, kind: str, after: int = 0) -> list[dict[str, Any]]:
        """Client events of that type the simulator received."""
        return [e for e in self.sim.received[after:] if e.get("type") == kind]

    def tool_outputs(self) -> list[dict[str, Any]]:
        """The function_call_output items the bridge gave the model, output parsed."""
        found = []
        for event in self.sent("conversation.item.create"):
            item = event.get("item", {})
            if item.get("type") == "function_call_output":
                try:
                    output = json.loads(item["output"])
                except (json.JSONDecodeError, TypeError):
                    output = item["output"]
                found.append({"call_id": item["call_id"], "output": output})
        return found

    # -- winding down ------------------------------------------------------------------
    async def speaker(self) -> bytes:
        """Stop audio-io (it closes the WAV) and return everything it played."""
        proc = self.procs["audio-io"]
        if proc.alive():
            code = await proc.terminate()
            assert code == 0, proc.output()[-3000:]
        return read_speaker(self.speaker_path)

    async def stop(self) -> None:
        for proc in reversed(self.procs.values()):
            if proc.alive():
                try:
                    await proc.terminate(timeout_s=10)
                except TimeoutError:
                    proc.kill()

    def outputs(self, tail: int = 3000) -> str:
        return "\n".join(f"--- {name}\n{p.output()[-tail:]}" for name, p in self.procs.items())


def _wired(health: Health) -> bool:
    return health.detail.get("wired") is True


def write_persona(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"""
version: 1
name: {PERSONA}
voice: alloy
language_code: en
transcription_language: en
timezone: Europe/London
system_prompt: You are Huxley, under test.
skills:
  system:
    timezone: Europe/London
  timers:
    fire_prompt: "Tell the user: {{message}}"
  audiobooks:
    library: audiobooks
  doorbell:
    priority: preempt
    quiet_s: 0
    announce_prompt: "Tell the user: Someone rang doorbell."
  intercom: {{}}
ui_strings:
  too_short: "That was a very short press."
  offline: "I can't reach my voice right now."
""".lstrip()
    )
    return path


def copy_book(book_wav: Path, data_dir: Path) -> Path:
    target = data_dir / PERSONA / "audiobooks" / book_wav.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(book_wav, target)
    return target
