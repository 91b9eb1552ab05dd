"""Our own audio paths, one-way, each against bare NATS of the same mode,
measured here in the same interleaved rounds (paths.nats: bench_transports'
publisher and subscriber in separate processes, 50 frames/s and bursts of
five; PERF-14).

- paths.skill_stream: a skill's frame -> audio-io's mixer. The skill-host's
  real StreamPump in its own process (bench/path_peers.py) sends a stream
  as skill-host does; audio-io (its own process, web backend) stamps the
  frame once it is in the mixer.
- paths.mic_append: the edge's mic frame -> the bridge's append on the
  model's socket. A WebSocket client presses PTT and talks to audio-io;
  audio-io stamps each chunk as its edge takes it in and publishes it; the
  real realtime-bridge (own process) appends it through the openai client
  and stamps it once the socket took it.
- paths.model_audio: a model audio delta -> audio-io's mixer. The bridge
  stamps each 20 ms frame of a delta as it takes the event from the openai
  client (20 ms deltas at 50/s, then 100 ms deltas every 100 ms, each five
  frames), cuts and publishes the frames, audio-io stamps them in the mixer.

Those three are the paths our code owns. The model's socket is not ours (in
a home it is the internet to OpenAI), so it is measured on its own
(paths.ws_hop, against raw TCP) and the two model paths are also reported
through it, from audio-io's edge to the simulator's receipt
(paths.mic_append_at_model) and from the simulator's send to the mixer
(paths.model_audio_from_model).

Focus and storage run too (own processes), so presses and turns go as in a
home. Stamps are CLOCK_MONOTONIC ns (time.monotonic_ns, system-wide on
Linux, as in bench/transport_peers.py), carried in the first PCM bytes of
each frame; audio-io and the bridge write their stamps through their bench
taps (huxley_audio_io.bench_tap, huxley_bridge.bench_tap).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.server import ServerConnection

from bench.bench_transports import measure
from bench.harness import BenchEnv, Measurement, healthy, in_rounds, latency, peer_env
from bench.transport_peers import (
    BURST,
    BURST_EVERY_S,
    END,
    HEADER,
    LAST_OF_BURST,
    PACE_S,
    WARMUP,
    WARMUP_FRAMES,
)
from huxley_realtime_sim import SimServer, parse_rules
from huxley_realtime_sim.rules import Step, ToneSpec
from huxley_realtime_sim.voice import ToneVoice
from huxley_wire.audio import FRAME_BYTES
from huxley_wire.codec import decode
from huxley_wire.messages import bridge as bm
from huxley_wire.permissions import Role
from huxley_wire.subjects import Subjects

REPO = Path(__file__).resolve().parents[1]
PACED_FRAMES = int(os.environ.get("HUXLEY_BENCH_PATHS_PACED", "500"))  # 10 s at 50/s
BURSTS = int(os.environ.get("HUXLEY_BENCH_PATHS_BURSTS", "200"))  # 20 s, a burst every 100 ms
# Measured in ROUNDS interleaved rounds together with bare NATS (PERF-14): a
# slow spell of the shared machine falls on the paths and on their baseline alike.
ROUNDS = 4
MODES = ("paced", "burst")
SERVICES = {
    "storage": ("huxley_storage", Role.STORAGE),
    "focus": ("huxley_focus", Role.FOCUS),
    "audio-io": ("huxley_audio_io", Role.AUDIO_IO),
    "realtime-bridge": ("huxley_bridge", Role.BRIDGE),
}
RULES = "speed: 1\nchunk_ms: 100\ndefault: {tone: {hz: 440, ms: 1000}}\nrules: []\n"
Stamp = tuple[int, int, int, int]  # (arrival ns, and from the frame's bytes: send ns, seq, flags)


def frames_of(mode: str) -> int:
    """The frames of one round's window."""
    return (PACED_FRAMES if mode == "paced" else BURSTS * BURST) // ROUNDS


def flags_of(n: int, mode: str) -> int:
    if n < WARMUP_FRAMES:
        return WARMUP
    return LAST_OF_BURST if mode == "burst" and (n - WARMUP_FRAMES) % BURST == BURST - 1 else 0


def stamped(pcm: bytes, seq: int, flags: int, now: int) -> bytes:
    return HEADER.pack(now, seq, flags) + pcm[HEADER.size :]


class StampingSim(SimServer):
    """The simulator, stamping the mic audio it is sent and the model audio it sends."""

    def __init__(self) -> None:
        super().__init__(parse_rules(RULES), voice=ToneVoice())
        self.appends: list[tuple[int, bytes]] = []  # (arrival ns, first PCM bytes)
        self.mode = "paced"
        self.sent = 0  # model audio frames sent in this response

    async def _on_message(self, conn: Any, raw: str | bytes) -> None:
        now = time.monotonic_ns()
        if "input_audio_buffer.append" in raw[:100] if isinstance(raw, str) else False:
            with contextlib.suppress(ValueError, KeyError):
                pcm = base64.b64decode(json.loads(raw)["audio"])
                for i in range(0, len(pcm), FRAME_BYTES):  # an append may join several frames
                    head = pcm[i : i + HEADER.size]
                    if len(head) == HEADER.size:
                        self.appends.append((now, head))
        await super()._on_message(conn, raw)

    async def _send(self, conn: Any, event: dict[str, Any]) -> None:
        if event.get("type") == "response.output_audio.delta":
            pcm = base64.b64decode(event["delta"])
            now = time.monotonic_ns()
            frames = []
            for i in range(0, len(pcm), FRAME_BYTES):
                frames.append(
                    stamped(pcm[i : i + FRAME_BYTES], self.sent, flags_of(self.sent, self.mode), now)
                )
                self.sent += 1
            event = {**event, "delta": base64.b64encode(b"".join(frames)).decode()}
        await super()._send(conn, event)

    def respond_with(self, mode: str) -> None:
        """The next response: a tone as long as the measurement, in 20 ms or 100 ms deltas."""
        self.mode, self.sent = mode, 0
        ms = (WARMUP_FRAMES + frames_of(mode)) * 20 + 200
        self.book = self.book.model_copy(
            update={"chunk_ms": 20 if mode == "paced" else 100, "default": Step(tone=ToneSpec(ms=ms))}
        )
        for conn in self.connections.values():  # each conversation picks its steps from its own book
            conn.conversation.book = self.book


def tap_lines(path: Path, offset: int, kind: str) -> list[Stamp]:
    """audio-io's stamps of `kind` written past `offset`, each (its arrival ns, and the
    sender's (send ns, seq, flags) from the frame's first bytes)."""
    out = []
    with path.open("rb") as f:
        f.seek(offset)
        for line in f.read().decode().splitlines():
            what, at, head = line.split(" ")
            if what == kind and len(head) == 2 * HEADER.size:
                out.append((int(at), *HEADER.unpack(bytes.fromhex(head))))
    return out


def measured(flags: int, bursts: bool) -> bool:
    """Not a warm-up or end frame; of a burst, only its last frame."""
    return not flags & (WARMUP | END) and (not bursts or bool(flags & LAST_OF_BURST))


def since_sent(stamps: list[Stamp]) -> list[float]:
    """ms from each measured frame's send stamp (in its bytes) to its arrival."""
    bursts = any(flags & LAST_OF_BURST for *_, flags in stamps)
    return [(at - sent) / 1e6 for at, sent, _seq, flags in stamps if measured(flags, bursts)]


def between(start: list[Stamp], end: list[Stamp]) -> list[float]:
    """ms from the arrival in `start` to the arrival in `end` of each measured sequence number."""
    arrived = {seq: at for at, _sent, seq, _flags in reversed(end)}  # the first arrival counts
    bursts = any(flags & LAST_OF_BURST for *_, flags in start)
    return [
        (arrived[seq] - at) / 1e6
        for at, _sent, seq, flags in start
        if measured(flags, bursts) and seq in arrived
    ]


class Stack:
    """storage, focus, audio-io and the bridge, each its own process, on the run's nats-server."""

    def __init__(self, env: BenchEnv, sim: StampingSim) -> None:
        self.env, self.sim = env, sim
        self.site = env.site()
        self.subjects = Subjects(self.site)
        self.dir = env.workdir / "paths"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tap = self.dir / "audio-io-stamps.txt"
        self.tap.touch()
        self.bridge_tap = self.dir / "bridge-stamps.txt"
        self.bridge_tap.touch()
        self.web_port = 0
        self.procs: list[subprocess.Popen[bytes]] = []
        self.turns: asyncio.Queue[str] = asyncio.Queue()

    def _start(self, service: str) -> None:
        module, role = SERVICES[service]
        dropped = ("OPENAI_API_KEY",)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUXLEY_") and k not in dropped}
        env |= {
            **self.env.auth(self.site).env(role),
            "HUXLEY_NATS_URL": self.env.nats_url,
            "HUXLEY_SITE": self.site,
            "HUXLEY_DATA_DIR": str(self.dir / "data"),
            "HUXLEY_PERSONAS_DIR": str(REPO / "personas"),
            "HUXLEY_LOG_LEVEL": "warning",
        }
        if service == "audio-io":
            from bench.bench_streams import _free_port

            self.web_port = _free_port()
            env |= {
                "HUXLEY_AUDIO_BACKEND": "web",
                "HUXLEY_WEB_HOST": "127.0.0.1",
                "HUXLEY_WEB_PORT": str(self.web_port),
                "HUXLEY_AUDIO_BENCH_TAP": str(self.tap),
            }
        if service == "realtime-bridge":
            env["HUXLEY_REALTIME_URL"] = self.sim.url
            env["HUXLEY_BRIDGE_BENCH_TAP"] = str(self.bridge_tap)
        log = (self.dir / f"{service}.log").open("ab")
        self.procs.append(
            subprocess.Popen([sys.executable, "-m", module], env=env, cwd=self.dir, stdout=log, stderr=log)
        )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        (self.dir / "data").mkdir(exist_ok=True)
        try:
            for service in SERVICES:
                self._start(service)
            self.nc = await self.env.connect(self.site)
            await self.nc.subscribe(self.subjects.bridge_event("turn"), cb=self._on_turn)
            deadline = time.monotonic() + 60
            pending = set(SERVICES)
            while pending:
                if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                    raise RuntimeError(f"not healthy: {sorted(pending)} (logs in {self.dir})")
                pending -= {s for s in list(pending) if await healthy(self.nc, self.subjects, s)}
                await asyncio.sleep(0.1)
            await self.sim.wait_connections(1, timeout=30)
            yield
        finally:
            with contextlib.suppress(Exception):
                await self.nc.close()
            for proc in self.procs:
                proc.terminate()
            for proc in self.procs:
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    async def _on_turn(self, msg: Any) -> None:
        await self.turns.put(decode(msg.data, bm.TurnEvent).phase)

    async def until_phase(self, *phases: str) -> None:
        async with asyncio.timeout(60):
            while await self.turns.get() not in phases:
                pass

    async def skill_stream(self, mode: str) -> list[float]:
        offset = self.tap.stat().st_size
        peer = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.path_peers",
            self.env.nats_url,
            mode,
            str(frames_of(mode)),
            cwd=REPO,
            env=peer_env(self.env, self.site),
        )
        if await asyncio.wait_for(peer.wait(), 120) != 0:
            raise RuntimeError(f"the stream peer failed ({mode})")
        await self.until_tapped(offset)
        return since_sent(tap_lines(self.tap, offset, "out"))

    async def until_tapped(self, offset: int) -> None:
        """Until audio-io stamped the stream's end-of-stream frame (the file is polled)."""
        async with asyncio.timeout(30):
            while not any(  # noqa: ASYNC110 (a file has nothing to await)
                flags & END for *_, flags in tap_lines(self.tap, offset, "out")
            ):
                await asyncio.sleep(0.05)

    async def press_and_answer(self, ws: ClientConnection, mode: str) -> dict[str, list[float]]:
        """One press of mic audio (paced or in bursts), then the model's answer, in
        `mode`: the samples of the mic and model paths, with and without the socket."""
        await ws.send(json.dumps({"type": "ptt_start"}))
        await self.until_phase("listening")
        offset = self.tap.stat().st_size
        bridge_offset = self.bridge_tap.stat().st_size
        appended = len(self.sim.appends)
        loop = asyncio.get_running_loop()
        start = loop.time() + PACE_S
        total = WARMUP_FRAMES + frames_of(mode)
        n = 0
        chunk = bytes(FRAME_BYTES)
        while n < total:
            due = start + (n * PACE_S if mode == "paced" else n // BURST * BURST_EVERY_S)
            await asyncio.sleep(max(0.0, due - loop.time()))
            for _ in range(1 if mode == "paced" else BURST):
                pcm = stamped(chunk, n, flags_of(n, mode), time.monotonic_ns())
                await ws.send(json.dumps({"type": "audio", "data": base64.b64encode(pcm).decode()}))
                n += 1
        self.sim.respond_with(mode)
        answer = self.tap.stat().st_size
        await ws.send(json.dumps({"type": "ptt_stop"}))
        await self.until_phase("ended", "cancelled")  # every append made, the answer played
        heard = [(at, *HEADER.unpack(head)) for at, head in self.sim.appends[appended:]]
        edge = tap_lines(self.tap, offset, "mic")
        mixed = tap_lines(self.tap, answer, "out")
        return {
            "mic_append": between(edge, tap_lines(self.bridge_tap, bridge_offset, "append")),
            "mic_append_at_model": between(edge, heard),
            "model_audio": between(tap_lines(self.bridge_tap, bridge_offset, "delta"), mixed),
            "model_audio_from_model": since_sent(mixed),
        }


async def ws_hop(env: BenchEnv, mode: str) -> list[float]:
    """The floor of the model socket: a WebSocket server here sends the frames as
    JSON deltas (as the simulator does) to a websockets client in its own process."""
    frames = frames_of(mode)

    async def send(ws: ServerConnection) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time() + PACE_S
        total = WARMUP_FRAMES + frames
        for n in range(total + 1):
            due = start + (n * PACE_S if mode == "paced" else n // BURST * BURST_EVERY_S)
            if n % (1 if mode == "paced" else BURST) == 0 or n == total:
                await asyncio.sleep(max(0.0, due - loop.time()))
            flags = END if n == total else flags_of(n, mode)
            pcm = stamped(bytes(FRAME_BYTES), n, flags, time.monotonic_ns())
            await ws.send(json.dumps({"type": "response.output_audio.delta", "delta": b64(pcm)}))

    async with websockets.serve(send, "127.0.0.1", 0, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        peer = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.path_peers",
            "ws",
            f"ws://127.0.0.1:{port}",
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(peer.communicate(), 120)
    samples = [(float(ms), bool(last)) for ms, last in json.loads(out)]
    return [ms for ms, last in samples if mode == "paced" or last]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def drain(ws: ClientConnection) -> None:
    """What audio-io sends the client (audio blocks, state): read and dropped, as a browser plays it."""
    with contextlib.suppress(websockets.ConnectionClosed):
        async for _ in ws:
            pass


async def run(env: BenchEnv) -> list[Measurement]:
    environment = peer_env(env, env.site())  # the bare NATS peers connect as the harness
    by_path: dict[str, dict[str, list[float]]] = {}

    def add(path: str, mode: str, samples: list[float]) -> None:
        by_path.setdefault(path, {}).setdefault(mode, []).extend(samples)

    async def bare_nats(mode: str) -> None:
        add("nats", mode, await measure(environment, "nats", env.nats_url, mode, frames_of(mode)))

    sim = StampingSim()
    async with sim:
        stack = Stack(env, sim)
        async with (
            stack.running(),
            websockets.connect(f"ws://127.0.0.1:{stack.web_port}/ws", max_size=None) as ws,
        ):
            reader = asyncio.create_task(drain(ws))

            async def skill(mode: str) -> None:
                add("skill_stream", mode, await stack.skill_stream(mode))

            async def turn(mode: str) -> None:
                for path, samples in (await stack.press_and_answer(ws, mode)).items():
                    add(path, mode, samples)

            async def hop(mode: str) -> None:
                add("ws_hop", mode, await ws_hop(env, mode))

            # Each round a quarter of every window, the order turned each round,
            # bare NATS among them: a slow spell falls on a path and its baseline alike.
            for window in in_rounds([bare_nats, skill, turn, hop], ROUNDS):
                for mode in MODES:
                    await window(mode)
            reader.cancel()
    what = {"paced": "50 frames/s", "burst": "last frame of each burst of 5"}
    notes = {
        "nats": "bare NATS as transport.nats (bench.transport_peers, publisher and subscriber in "
        "separate processes), in the same rounds as the paths: their baseline",
        "skill_stream": "skill-host's StreamPump (own process) -> NATS -> audio-io's mixer (own process)",
        "mic_append": "audio-io's edge takes a mic chunk -> NATS -> realtime-bridge (own process) -> "
        "its append taken by the model's socket (openai client)",
        "mic_append_at_model": "as mic_append, to the append's arrival at huxley-realtime-sim "
        "(the socket's hop included: not our path)",
        "model_audio": "realtime-bridge takes a delta from the openai client -> NATS -> audio-io's mixer",
        "model_audio_from_model": "as model_audio, from huxley-realtime-sim's send "
        "(the socket's hop included: not our path)",
        "ws_hop": "the model socket's hop alone: JSON deltas from a websockets server to a "
        "websockets client in another process",
    }
    results: list[Measurement] = []
    for path in notes:
        for mode in MODES:
            suffix = "paced" if mode == "paced" else "burst_last"
            samples = by_path.get(path, {}).get(mode)
            if not samples:
                raise RuntimeError(f"paths.{path}.{suffix}: no samples (logs in {stack.dir})")
            baseline = {"nats": None, "ws_hop": f"transport.tcp.{suffix}"}.get(path, f"paths.nats.{suffix}")
            results.append(
                latency(
                    f"paths.{path}.{suffix}",
                    samples,
                    baseline=baseline,
                    note=f"{notes[path]}; {what[mode]}; {ROUNDS} interleaved rounds",
                )
            )
    return results
