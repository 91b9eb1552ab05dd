"""Realtime bridge benchmarks.

- bridge.core.*: the pure turn coordinator's cost per event, against the
  work every mic frame needs anyway (base64 + JSON of its append event).
- bridge.sim.*: the coordinator alone on the real openai client to
  huxley-realtime-sim on loopback (focus and audio-io answered inline).
- bridge.bus.*: the whole path — the bridge service with real focus,
  storage and audio-io (file backend) on NATS: PTT release published on the
  bus -> response.create on the socket, and an idle `inject` request to
  focus -> its conversation item on the socket (p50/p99), against the bare
  NATS request/reply. Every service shares the bench's event loop there.
- bridge.procs.idle_inject_to_conversation_item: the same inject with
  storage, focus, audio-io and the bridge each in its own process (as
  `huxley up` and compose run them; bench_paths' stack), so their work
  overlaps on the cores instead of adding up in one loop; against
  bridge.procs.idle_request_reply, a bare request/reply to a responder in
  its own process taken alternately with the injects, each after the same
  quiet spell.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bench.harness import (
    BASELINE_REQUEST_REPLY,
    BenchEnv,
    Measurement,
    echo_here,
    echo_peer,
    latency,
    time_many,
)
from huxley_audio_io.service import AudioService
from huxley_audio_io.settings import AudioSettings
from huxley_bridge import commands as c
from huxley_bridge import events as e
from huxley_bridge.coordinator import CoordinatorConfig, TurnCoordinator
from huxley_bridge.model import ModelEndpoint, ModelSession
from huxley_bridge.service import BridgeService
from huxley_bridge.settings import BridgeSettings
from huxley_focus.service import FocusService
from huxley_focus.settings import FocusSettings
from huxley_realtime_sim import SimServer, parse_rules
from huxley_realtime_sim.voice import ToneVoice
from huxley_runtime.bus import settle
from huxley_runtime.rpc import request
from huxley_runtime.service import Service
from huxley_runtime.settings import HuxleySettings
from huxley_storage.service import StorageService
from huxley_storage.settings import StorageSettings
from huxley_wire.audio import FRAME_BYTES, AudioFrame, encode_frame, now_us
from huxley_wire.codec import decode, encode
from huxley_wire.messages import audio as am
from huxley_wire.messages import bridge as bm
from huxley_wire.messages import focus as fm
from huxley_wire.messages.skills import ToolReply
from huxley_wire.permissions import Role
from huxley_wire.subjects import Subjects

FRAME = bytes(range(256)) * (FRAME_BYTES // 256) + bytes(FRAME_BYTES % 256)
DELTA_100MS = FRAME * 5
BASELINE_ENCODE = "bridge.baseline.encode_append"
IDLE_BASELINE = "bridge.procs.idle_request_reply"
QUIET_S = 0.05
RULES = """
speed: 0
default: {say: "Okay."}
rules: []
"""


def per_event_us(name: str, fn: Any, n: int, baseline: str | None, note: str) -> Measurement:
    samples = []
    for _ in range(5):  # five batches: p50/p99 over batch means
        started = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - started) / n * 1e6)
    m = latency(name, samples, baseline=baseline, note=note)
    m.unit = "us"
    m.extra = {"per_s_at_p50": round(1e6 / m.p50) if m.p50 else None, "per_batch": n}
    return m


def listening_core() -> TurnCoordinator:
    core = TurnCoordinator(CoordinatorConfig(lead_ms=1e12))
    core.handle(e.ModelConnected(), 0)
    out = core.handle(e.PttStart("p", 0), 0)
    token = next(x.token for x in out if isinstance(x, c.Interrupt))
    out = core.handle(e.InterruptDone(token), 0)
    turn = next(x.turn_id for x in out if isinstance(x, c.AcquireDialog))
    core.handle(e.DialogAcquired(turn, "a1"), 0)
    return core


def one_turn(n: int) -> None:
    """A whole user turn with a tool call and a follow-up (~90 events)."""
    core = TurnCoordinator(CoordinatorConfig(lead_ms=1e12))
    core.handle(e.ModelConnected(), 0)
    core.handle(e.ToolsChanged({"get_current_time": "system"}), 0)
    out = core.handle(e.PttStart(f"p{n}", 0), 0)
    out = core.handle(e.InterruptDone(next(x.token for x in out if isinstance(x, c.Interrupt))), 0)
    clear = next(x.token for x in out if isinstance(x, c.ClearAudio))
    core.handle(e.DialogAcquired(next(x.turn_id for x in out if isinstance(x, c.AcquireDialog)), "a1"), 0)
    core.handle(e.AudioCleared(clear), 0)
    for _ in range(50):
        core.handle(e.MicAudio(FRAME), 0)
    core.handle(e.PttStop(f"p{n}", 1_000_000), 0)
    core.handle(e.ResponseCreated("r1"), 0)
    for _ in range(5):
        core.handle(e.AudioDelta("r1", "i1", DELTA_100MS), 0)
    core.handle(e.FunctionCall("r1", "f1", "c1", "get_current_time", "{}"), 0)
    core.handle(e.ResponseDone("r1", "completed"), 0)
    core.handle(e.ToolDone("c1", ToolReply(output='{"time": "10:42"}', host="h", skill="system")), 0)
    core.handle(e.ResponseCreated("r2"), 0)
    for _ in range(10):
        core.handle(e.AudioDelta("r2", "i2", DELTA_100MS), 0)
    out = core.handle(e.ResponseDone("r2", "completed"), 0)
    out = core.handle(e.Played("a1", 1500, drained=True), 0)
    end = next(x for x in out if isinstance(x, c.EndTurn))
    core.handle(e.TurnEndDone(end.turn_id), 0)


def core_benchmarks() -> list[Measurement]:
    results = [
        per_event_us(
            BASELINE_ENCODE,
            lambda: json.dumps(
                {"type": "input_audio_buffer.append", "audio": base64.b64encode(FRAME).decode()}
            ),
            20_000,
            None,
            "base64 + JSON of one 20 ms frame's append event: work every mic frame needs anyway",
        )
    ]
    core = listening_core()
    mic = e.MicAudio(FRAME)
    results.append(
        per_event_us(
            "bridge.core.mic_frame",
            lambda: core.handle(mic, 0.0),
            20_000,
            BASELINE_ENCODE,
            "MicAudio -> AppendAudio while listening",
        )
    )
    core = listening_core()
    for _ in range(10):
        core.handle(mic, 0)
    core.handle(e.PttStop("p", 1_000_000), 0)
    core.handle(e.ResponseCreated("r1"), 0)
    assert core.turn is not None and core.turn.phase == "thinking"
    delta = e.AudioDelta("r1", "i1", DELTA_100MS)
    results.append(
        per_event_us(
            "bridge.core.audio_delta_100ms",
            lambda: core.handle(delta, 0.0),
            5_000,
            BASELINE_ENCODE,
            "100 ms of model audio into the turn's output stream (cut into frames, paced)",
        )
    )
    counter = iter(range(10**9))
    turn = per_event_us(
        "bridge.core.user_turn",
        lambda: one_turn(next(counter)),
        200,
        None,
        "a whole user turn with a tool call and a follow-up, ~90 events",
    )
    turn.unit = "us/turn"
    results.append(turn)
    return results


class SocketLoop:
    """The coordinator and the model socket, with focus and audio-io answered inline."""

    def __init__(self, sim: SimServer) -> None:
        self.sim = sim
        self.core = TurnCoordinator(CoordinatorConfig(lead_ms=1e12))
        self.session = ModelSession(ModelEndpoint("gpt-realtime", "sk-bench", sim.url))
        self._events: AsyncIterator[Any] | None = None

    async def start(self) -> None:
        await self.session.connect()
        self._events = self.session.events().__aiter__()
        await self.feed(e.ModelConnected())

    async def feed(self, event: e.Event) -> None:
        replies: list[e.Event] = []
        for cmd in self.core.handle(event, time.monotonic()):
            match cmd:
                case c.SendModel(event=ev):
                    await self.session.send(ev)
                case c.AppendAudio(pcm=pcm):
                    await self.session.append_audio(pcm)
                case c.Interrupt(token=token):
                    replies.append(e.InterruptDone(token))
                case c.AcquireDialog(turn_id=turn_id):
                    replies.append(e.DialogAcquired(turn_id, f"a-{turn_id}"))
                case c.ClearAudio(token=token):
                    replies.append(e.AudioCleared(token))
                case c.PublishAudio(stream_id=stream, eos=True):
                    replies.append(e.Played(stream, 0, drained=True))
                case c.EndTurn(turn_id=turn_id):
                    replies.append(e.TurnEndDone(turn_id))
                case _:
                    pass
        for reply in replies:
            await self.feed(reply)

    async def until_response_done(self) -> None:
        assert self._events is not None
        while True:
            event = await anext(self._events)
            await self.feed(event)
            if isinstance(event, e.ResponseDone):
                return

    async def ptt_release_to_create(self, i: int) -> float:
        await self.feed(e.PttStart(f"p{i}", 0))
        for _ in range(15):
            await self.feed(e.MicAudio(FRAME))
        mark = len(self.sim.received)
        started = time.perf_counter()
        await self.feed(e.PttStop(f"p{i}", 300_000))
        create = await self.sim.wait_for("response.create", after=mark)
        await self.until_response_done()
        return (create["_at"] - started) * 1e3

    async def inject_to_item(self, i: int) -> float:
        mark = len(self.sim.received)
        started = time.perf_counter()
        await self.feed(e.RunInjectRequested(f"inj{i}", "Tell the user: hello", f"ai{i}"))
        item = await self.sim.wait_for("conversation.item.create", after=mark)
        await self.until_response_done()
        return (item["_at"] - started) * 1e3


async def socket_benchmarks(n: int = 200) -> list[Measurement]:
    async with SimServer(parse_rules(RULES), voice=ToneVoice()) as sim:
        loop = SocketLoop(sim)
        await loop.start()
        for i in range(20):  # warm-up
            await loop.ptt_release_to_create(10_000 + i)
        ptt = [await loop.ptt_release_to_create(i) for i in range(n)]
        inject = [await loop.inject_to_item(i) for i in range(n)]
        await loop.session.close()
    note = "the coordinator alone: openai client -> huxley-realtime-sim on loopback, no bus"
    return [
        latency("bridge.sim.ptt_release_to_response_create", ptt, BASELINE_REQUEST_REPLY, note),
        latency("bridge.sim.idle_inject_to_conversation_item", inject, BASELINE_REQUEST_REPLY, note),
    ]


class BusStack:
    """The bridge service with real focus, storage and audio-io on NATS."""

    def __init__(self, env: BenchEnv, sim: SimServer) -> None:
        base = HuxleySettings(
            nats_url=env.nats_url,
            site=env.site(),
            data_dir=env.workdir / "bridge-bus",
            personas_dir=Path(__file__).resolve().parents[1] / "personas",
            _env_file=None,  # type: ignore[call-arg]
        )
        fields = base.model_dump()
        auth = env.auth(base.site)

        def settings[S: HuxleySettings](cls: type[S], role: Role, **extra: Any) -> S:
            """Each service connects as its own identity."""
            return cls(**fields | auth.fields(role), **extra, _env_file=None)  # type: ignore[call-arg]

        self.env = env
        self.sim = sim
        self.subjects = Subjects(base.site)
        self.services: list[Service] = [
            StorageService(settings(StorageSettings, Role.STORAGE)),
            FocusService(settings(FocusSettings, Role.FOCUS)),
            AudioService(
                settings(
                    AudioSettings,
                    Role.AUDIO_IO,
                    audio_backend="file",
                    audio_file_out=env.workdir / "bench-speaker.wav",
                )
            ),
            BridgeService(settings(BridgeSettings, Role.BRIDGE, realtime_url=sim.url)),
        ]
        self.ended = 0
        self._changed = asyncio.Condition()

    async def start(self) -> None:
        for service in self.services:
            await service.start()
        self.nc = await self.env.connect(self.subjects.site)
        await self.nc.subscribe(self.subjects.bridge_event("turn"), cb=self._on_turn)
        await settle(self.nc)
        await self.sim.wait_connections(1)

    async def stop(self) -> None:
        await self.nc.close()
        for service in reversed(self.services):
            await service.stop()

    async def _on_turn(self, msg: Any) -> None:
        if decode(msg.data, bm.TurnEvent).phase == "ended":
            async with self._changed:
                self.ended += 1
                self._changed.notify_all()

    async def until_idle(self, ended: int) -> None:
        """The turn ended and the bridge took turn_end's reply."""
        async with asyncio.timeout(20), self._changed:
            await self._changed.wait_for(lambda: self.ended >= ended)
        await bridge_idle(self.nc, self.subjects)

    async def publish(self, subject: str, message: Any) -> None:
        await self.nc.publish(subject, encode(message))

    async def ptt_release_to_create(self, i: int) -> float:
        press = f"bp{i}"
        ended = self.ended
        await self.publish(
            self.subjects.audio_ptt(), am.PttEvent(action="start", press_id=press, ts_us=now_us())
        )
        # A real press: 20 ms frames in real time, the release right after the last one.
        for seq in range(15):
            frame = AudioFrame(press, seq, now_us(), FRAME)
            await self.nc.publish(self.subjects.audio_mic_assistant(), encode_frame(frame))
            await asyncio.sleep(0.02)
        stop = am.PttEvent(action="stop", press_id=press, ts_us=now_us() + 300_000, frames=15)
        mark = len(self.sim.received)
        started = time.perf_counter()
        await self.publish(self.subjects.audio_ptt(), stop)
        create = await self.sim.wait_for("response.create", after=mark)
        await self.until_idle(ended + 1)
        return (create["_at"] - started) * 1e3

    async def inject_to_item(self, i: int) -> float:
        ended = self.ended
        mark = len(self.sim.received)
        started = time.perf_counter()
        inject = fm.Inject(inject_id=f"bench-inject-{i}", prompt="Tell the user: hello")
        await request(self.nc, self.subjects.focus_rpc_of("bridge"), inject)
        item = await self.sim.wait_for("conversation.item.create", after=mark)
        await self.until_idle(ended + 1)
        return (item["_at"] - started) * 1e3


async def bus_benchmarks(env: BenchEnv, n: int = 60) -> list[Measurement]:
    async with SimServer(parse_rules(RULES), voice=ToneVoice()) as sim:
        stack = BusStack(env, sim)
        await stack.start()
        try:
            for i in range(5):  # warm-up
                await stack.ptt_release_to_create(10_000 + i)
            ptt = [await stack.ptt_release_to_create(i) for i in range(n)]
            inject = [await stack.inject_to_item(i) for i in range(n)]
        finally:
            await stack.stop()
    note = (
        "real bridge, focus, storage, audio-io (file backend) on NATS, openai client -> "
        "huxley-realtime-sim; mic frames paced at 20 ms like a real press; "
        "each turn plays out in real time before the next"
    )
    return [
        latency("bridge.bus.ptt_release_to_response_create", ptt, BASELINE_REQUEST_REPLY, note),
        latency("bridge.bus.idle_inject_to_conversation_item", inject, BASELINE_REQUEST_REPLY, note),
    ]


async def bridge_idle(nc: Any, subjects: Subjects) -> None:
    """Until the bridge took turn_end's reply (no turn in its snapshot)."""
    while True:
        snap = await request(nc, subjects.bridge_rpc(), bm.BridgeSnapshotRequest())
        if snap.turn_id is None:
            return
        await asyncio.sleep(0.005)


async def process_benchmarks(env: BenchEnv, n: int = 40) -> list[Measurement]:
    """The inject as a home runs it, against a bare request/reply taken in the
    same state: each sample, inject or bare, follows a quiet spell, and the two
    alternate, so both pay the machine's wake-ups from idle and see the same
    moments of it (on a VM a process woken from idle costs far more than one
    kept busy, which the back-to-back `nats.request_reply` never is)."""
    from bench.bench_paths import Stack, StampingSim

    sim = StampingSim()  # its default answer: a 1 s tone, played out in real time
    async with sim:
        stack = Stack(env, sim)
        async with (
            stack.running(),
            echo_peer(env, stack.site, "idle") as echo,
            echo_here(env, stack.site, "hot") as here,
        ):
            injects: list[float] = []
            bare: list[float] = []
            hot: list[float] = []
            for i in range(5 + n):  # the first five warm up
                # Back to back, as the shared nats.request_reply, at this moment of the run.
                hot += await time_many(lambda: stack.nc.request(here, b'{"v":1}', timeout=5), 10, warmup=5)
                await asyncio.sleep(QUIET_S)
                started = time.perf_counter()
                await stack.nc.request(echo, b'{"v":1}', timeout=5)
                if i >= 5:
                    bare.append((time.perf_counter() - started) * 1e3)
                await asyncio.sleep(QUIET_S)
                while not stack.turns.empty():  # phases of earlier turns
                    stack.turns.get_nowait()
                mark = len(sim.received)
                started = time.perf_counter()
                inject = fm.Inject(inject_id=f"bench-procs-inject-{i}", prompt="Tell the user: hello")
                await request(stack.nc, stack.subjects.focus_rpc_of("bridge"), inject)
                item = await sim.wait_for("conversation.item.create", after=mark)
                await stack.until_phase("ended")
                await bridge_idle(stack.nc, stack.subjects)
                if i >= 5:
                    injects.append((item["_at"] - started) * 1e3)
    note = (
        "storage, focus, audio-io (web backend) and the bridge each in its own process with its own "
        f"credentials, openai client -> huxley-realtime-sim in the bench process; each inject after "
        f"{QUIET_S * 1e3:.0f} ms of quiet, alternating with {IDLE_BASELINE}'s requests; each turn plays out"
    )
    idle_note = (
        f"bare NATS request/reply to a responder in its own process (bench.echo_peer), each after "
        f"{QUIET_S * 1e3:.0f} ms of quiet, alternating with the procs injects: the same wake-ups from idle"
    )
    hot_note = (
        "bare NATS request/reply as nats.request_reply (responder in the bench's process, back to back), "
        "ten before each procs inject: the inject's back-to-back bound in the scorecard (PERF-18)"
    )
    return [
        latency(IDLE_BASELINE, bare, BASELINE_REQUEST_REPLY, idle_note),
        latency("bridge.procs.request_reply", hot, BASELINE_REQUEST_REPLY, hot_note),
        latency("bridge.procs.idle_inject_to_conversation_item", injects, IDLE_BASELINE, note),
    ]


async def run(env: BenchEnv) -> list[Measurement]:
    return (
        core_benchmarks()
        + await socket_benchmarks()
        + await bus_benchmarks(env)
        + await process_benchmarks(env)
    )
