"""Many rooms on one bus (issue 16 item 4).

Each room is a site with its own focus, skill-host (the timers skill),
realtime bridge and audio-io (file backend), each its own process; one
storage serves every room and the local Realtime simulator (one server; it
keeps a conversation per connection) is the model. The rooms run on a
nats-server of their own with authentication on, every process connecting
as its room's identity (minted as `huxley up --sites` mints them), and the
bench drives each room as that room's test harness.

At each step N rooms press PTT at the same moment, ROUNDS times; the model
answers with a `set_timer` tool call (TIMER_S) and an acknowledgement, and the
timer fires as an injected turn. A room's turn is correct when, in that room
and only there, the tool call succeeded, the user turn ended, the timer's
inject fired once, its injected turn said the timer's message, and the
room's speaker played it out (audio.played drained after the inject fired).

Figures per step (rooms.<N>.*), the one-room step being the baseline measured
in the same run: PTT release -> the answer starts (turn phase `speaking`),
release -> user turn ended, release -> injected turn ended; CPU seconds per
room per turn (its four processes from /proc, plus its share of storage),
and of nats-server and this process (the simulator) per turn; PSS and RSS
per room. `rooms.served` is the largest N whose turns were all
correct with the user turn's p99 within SATURATED_X times the one-room p50;
the first N past it is where this machine saturates (or where it would run
out of memory: a step is not started unless MemAvailable keeps
MEMORY_RESERVE_MB after its rooms).

Environment: HUXLEY_BENCH_ROOMS_MAX (default 8: `make bench` stays short;
16 or more to find saturation on a small machine), HUXLEY_BENCH_ROOMS_ROUNDS
(default 2). `python -m bench rooms` runs this group alone.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg

from bench.harness import BenchEnv, Measurement, latency, percentile
from bench.procfs import cpu_s_or_zero, kib
from huxley_cli.auth import MAX_CONTROL_LINE
from huxley_cli.identities import CREDS_ENV
from huxley_cli.nats_jwt import jwt_of_creds
from huxley_cli.natsserver import NatsServer
from huxley_cli.up_auth import UpAuth
from huxley_realtime_sim import SimServer, parse_rules
from huxley_realtime_sim.voice import ToneVoice
from huxley_runtime.bus import settle
from huxley_runtime.rpc import request
from huxley_wire.audio import FRAME_BYTES, AudioFrame, encode_frame, now_us
from huxley_wire.codec import encode
from huxley_wire.errors import WireError
from huxley_wire.messages import audio as am
from huxley_wire.messages.common import Health, HealthRequest
from huxley_wire.permissions import harness_identity
from huxley_wire.subjects import Subjects

ALL_STEPS = (1, 2, 4, 8, 12, 16, 24, 32)
MAX_ROOMS = int(os.environ.get("HUXLEY_BENCH_ROOMS_MAX", "8"))
ROUNDS = max(1, int(os.environ.get("HUXLEY_BENCH_ROOMS_ROUNDS", "2")))
SATURATED_X = 2.0  # a step whose user-turn p99 passes this many one-room p50s is saturated
TURN_LIMIT_S = 30.0  # a turn (through its timer) not done by then failed
MEMORY_RESERVE_MB = 1024
TEA = "Tea is ready."
# Long enough that the timer fires after the user turn ended even when the
# machine is busy: a fire during the turn waits for it and would blur both.
TIMER_S = int(os.environ.get("HUXLEY_BENCH_ROOMS_TIMER_S", "3"))
RULES = f"""
speed: 1
default:
  say: "Timer set."
  tools: [{{name: set_timer, arguments: {{seconds: {TIMER_S}, message: "{TEA}"}}}}]
follow_up: {{say: "Done."}}
rules:
  - name: injected
    regex: '^\\s*tell the user:?\\s*(?P<message>.+)$'
    say: "{{message}}"
"""
PERSONA = """version: 1
name: rooms
system_prompt: You are Huxley, being measured.
skills:
  timers:
    fire_prompt: "Tell the user: {message}"
"""
ROOM_SERVICES = {
    "focus": "huxley_focus",
    "skill-host": "huxley_skill_host",
    "audio-io": "huxley_audio_io",
    "realtime-bridge": "huxley_bridge",
}
WATCHED = (
    "bridge.event.turn",
    "bridge.event.tool_call",
    "bridge.event.transcript",
    "focus.event.inject",
    "audio.played",
)
FRAME = bytes(range(256)) * (FRAME_BYTES // 256) + bytes(FRAME_BYTES % 256)

Seen = tuple[str, dict[str, Any], float]  # subject without the site prefix, body, perf_counter


def steps(max_rooms: int = MAX_ROOMS) -> list[int]:
    chosen = [n for n in ALL_STEPS if n <= max_rooms]
    return chosen if max_rooms in chosen else [*chosen, max_rooms]


def rss_mb(pid: int) -> float:
    return kib(f"/proc/{pid}/status", "VmRSS:") / 1024


def pss_mb(pid: int) -> float:
    """Proportional set size: shared pages (the interpreter, libraries) split
    between the processes that map them, so rooms add up to the machine's use."""
    return kib(f"/proc/{pid}/smaps_rollup", "Pss:") / 1024


def available_mb() -> float:
    return kib("/proc/meminfo", "MemAvailable:") / 1024


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass
class Room:
    site: str
    procs: list[asyncio.subprocess.Process] = field(default_factory=list)
    nc: Client | None = None
    events: list[Seen] = field(default_factory=list)

    @property
    def subjects(self) -> Subjects:
        return Subjects(self.site)

    def cpu(self) -> float:
        return sum(cpu_s_or_zero(p.pid) for p in self.procs)

    def rss(self) -> float:
        return sum(rss_mb(p.pid) for p in self.procs)

    def pss(self) -> float:
        return sum(pss_mb(p.pid) for p in self.procs)


@dataclass
class Turn:
    speaking_ms: float  # PTT release -> the answer starts playing
    user_ms: float  # -> the user turn ended
    timer_ms: float  # -> the timer's injected turn ended


class Home:
    def __init__(self, env: BenchEnv, sim: SimServer, count: int) -> None:
        tag = secrets.token_hex(3)
        # Room names as a home would pick them ("kitchen"): each costs the
        # shared storage's credential ~200 bytes more (see control_line).
        self.rooms = [Room(f"room{i}") for i in range(count)]
        self.root = env.workdir / f"rooms-{tag}"
        self.persona = self.root / "rooms.yaml"
        self.persona.parent.mkdir(parents=True, exist_ok=True)
        self.persona.write_text(PERSONA)
        sites = tuple(room.site for room in self.rooms)
        # The rooms' own bus, authentication on: what `huxley up --sites` mints.
        self.auth = UpAuth.prepare(self.root / "data", sites[0], sites)
        self.storage_jwt = len(jwt_of_creds(Path(self.creds("storage", sites[0])[CREDS_ENV]).read_text()))
        self.server = NatsServer(
            store_dir=self.root / "nats", config_file=self.server_config(), log_file=self.root / "nats.log"
        )
        self.env = {
            **os.environ,
            "HUXLEY_PERSONA": str(self.persona),
            "HUXLEY_PERSONAS_DIR": str(self.root),
            "HUXLEY_LOG_LEVEL": "warning",
            "HUXLEY_STORAGE_BACKUPS": "0",
            "HUXLEY_AUDIO_BACKEND": "file",
            "HUXLEY_REALTIME_URL": sim.url,
            "HUXLEY_SCHEMA_WAIT_S": "0.2",
            "PYTHONUNBUFFERED": "1",
        }
        self.storage: asyncio.subprocess.Process | None = None
        self.changed = asyncio.Condition()

    def nats_cpu(self) -> float:
        process = self.server.process
        return cpu_s_or_zero(process.pid) if process is not None else 0.0

    def server_config(self) -> Path:
        """`huxley up`'s config (its control line fits the shared storage's
        JWT, which grows with every room: huxley_cli.auth.MAX_CONTROL_LINE)."""
        return self.auth.config

    def creds(self, service: str, site: str) -> dict[str, str]:
        return self.auth.child_env(service, str(self.persona), self.root, site)

    async def _spawn(self, module: str, env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("w") as out:
            return await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                module,
                env=env,
                stdout=out,
                stderr=out,
                stdin=asyncio.subprocess.DEVNULL,
            )

    async def start(self) -> None:
        self.server.start()
        self.env["HUXLEY_NATS_URL"] = self.server.url
        home = self.rooms[0]
        storage_env = {
            **self.env,
            "HUXLEY_SITE": home.site,
            "HUXLEY_STORAGE_SITES": ",".join(room.site for room in self.rooms[1:]),
            "HUXLEY_DATA_DIR": str(self.root / "storage"),
            **self.creds("storage", home.site),
        }
        self.storage = await self._spawn("huxley_storage", storage_env, self.root / "logs" / "storage.log")
        await self._connect(home)
        await self._healthy(home, "storage")

    async def _connect(self, room: Room) -> None:
        """The room's test harness: it presses the room's button and watches its events."""
        identity = harness_identity(room.site)
        path = self.auth.store.ensure(identity, int(time.time()))
        room.nc = await nats.connect(
            self.server.url, user_credentials=str(path), inbox_prefix=identity.inbox_prefix
        )
        prefix = room.subjects.prefix + "."

        async def keep(msg: Msg) -> None:
            async with self.changed:
                room.events.append(
                    (msg.subject.removeprefix(prefix), json.loads(msg.data), time.perf_counter())
                )
                self.changed.notify_all()

        for subject in WATCHED:
            await room.nc.subscribe(f"{prefix}{subject}", cb=keep)
        await settle(room.nc)

    async def open(self, room: Room) -> None:
        """Start a room's four services and wait until it can take a turn."""
        env = {
            **self.env,
            "HUXLEY_SITE": room.site,
            "HUXLEY_DATA_DIR": str(self.root / room.site),
            "HUXLEY_AUDIO_FILE_OUT": str(self.root / room.site / "speaker.wav"),
        }
        for name, module in ROOM_SERVICES.items():
            room_env = {**env, **self.creds(name, room.site)}
            log = self.root / "logs" / f"{room.site}-{name}.log"
            room.procs.append(await self._spawn(module, room_env, log))
        if room.nc is None:
            await self._connect(room)
        await self._healthy(room, "focus")
        await self._healthy(room, "audio-io")
        await self._healthy(
            room, "skill-host", lambda h: h.detail.get("skills", {}).get("timers", {}).get("status") == "ok"
        )
        await self._healthy(room, "realtime-bridge", lambda h: h.detail.get("wired") is True)

    async def _healthy(self, room: Room, service: str, accept: Any = lambda h: True) -> None:
        assert room.nc is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                health: Health = await request(
                    room.nc, room.subjects.health(service), HealthRequest(), timeout=1.0
                )
                if health.status == "ok" and accept(health):
                    return
            except WireError:
                pass
            await asyncio.sleep(0.2)
        name = "storage" if service == "storage" else f"{room.site}-{service}"
        log = (self.root / "logs" / f"{name}.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{service} of {room.site} did not come up; its log ends:\n{log}")

    async def turn(self, room: Room, n: int) -> Turn | None:
        """One press in `room`; None when the turn was not correct."""
        assert room.nc is not None
        mark = len(room.events)
        press = f"r{n}-{room.site}"
        s = room.subjects
        await room.nc.publish(
            s.audio_ptt(), encode(am.PttEvent(action="start", press_id=press, ts_us=now_us()))
        )
        for seq in range(15):  # a real press: 20 ms frames in real time
            await room.nc.publish(
                s.audio_mic_assistant(), encode_frame(AudioFrame(press, seq, now_us(), FRAME))
            )
            await asyncio.sleep(0.02)
        stop = am.PttEvent(action="stop", press_id=press, ts_us=now_us() + 300_000, frames=15)
        released = time.perf_counter()
        await room.nc.publish(s.audio_ptt(), encode(stop))

        def seen(kind: str, test: Any, after: float = 0.0) -> Seen | None:
            return next(
                (e for e in room.events[mark:] if e[0] == kind and e[2] >= after and test(e[1])), None
            )

        def phase(kind: str, name: str) -> Seen | None:
            return seen("bridge.event.turn", lambda t: t["kind"] == kind and t["phase"] == name)

        try:
            async with asyncio.timeout(TURN_LIMIT_S), self.changed:
                await self.changed.wait_for(lambda: phase("user", "ended") and phase("injected", "ended"))
        except TimeoutError:
            return None
        speaking, user, injected = (
            phase("user", "speaking"),
            phase("user", "ended"),
            phase("injected", "ended"),
        )
        tool = seen("bridge.event.tool_call", lambda t: t["name"] == "set_timer")
        fired = seen("focus.event.inject", lambda i: i["status"] == "fired" and i["skill"] == "timers")
        said = seen("bridge.event.transcript", lambda t: t["role"] == "assistant" and t["text"] == TEA)
        # A stream's end is its own PlayedEvent (progress comes batched, without `drained`).
        heard = fired and seen("audio.played", lambda p: p.get("drained") and p["played_ms"] > 0, fired[2])
        injects = [
            e
            for e in room.events[mark:]
            if e[0] == "bridge.event.turn" and e[1]["kind"] == "injected" and e[1]["phase"] == "ended"
        ]
        if not (speaking and user and injected and tool and said and heard) or len(injects) != 1:
            return None
        if tool[1].get("error") or '"ok": true' not in tool[1].get("output", ""):
            return None
        return Turn(*((t - released) * 1e3 for t in (speaking[2], user[2], injected[2])))

    async def stop(self) -> None:
        procs = [p for room in self.rooms for p in room.procs]
        if self.storage is not None:
            procs.append(self.storage)
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        for room in self.rooms:
            if room.nc is not None:
                await room.nc.close()
        self.server.stop()


def step_figures(count: int, turns: list[Turn], cpu: float, pss: float, rss: float) -> list[Measurement]:
    def base(name: str) -> str | None:
        if count == 1:  # the one room against the bridge alone (bench_bridge), when run with it
            return "bridge.bus.ptt_release_to_response_create" if name == "release_to_speaking" else None
        return f"rooms.1.{name}"

    correct = (
        f"{len(turns)} of {count * ROUNDS} turns correct ({count} room(s) pressing at once, {ROUNDS} rounds)"
    )
    out = [
        latency(
            f"rooms.{count}.release_to_speaking",
            [t.speaking_ms for t in turns],
            base("release_to_speaking"),
            f"{correct}; PTT release -> the answer starts playing (turn phase speaking)",
        ),
        latency(
            f"rooms.{count}.user_turn",
            [t.user_ms for t in turns],
            base("user_turn"),
            "PTT release -> user turn ended (its ~0.9 s of speech played in real time)",
        ),
        latency(
            f"rooms.{count}.timer_turn",
            [t.timer_ms for t in turns],
            base("timer_turn"),
            f"PTT release -> the {TIMER_S} s timer's injected turn ended",
        ),
    ]
    for name, unit, value, note in (
        ("cpu_per_room_turn", "cpu s", cpu, "a room's four processes per turn, plus its share of storage"),
        (
            "pss_per_room",
            "MB",
            pss,
            "a room's four processes, plus its share of storage (shared pages split)",
        ),
        (
            "rss_per_room",
            "MB",
            rss,
            "resident memory of a room's four processes (shared pages counted in each)",
        ),
    ):
        out.append(
            Measurement(f"rooms.{count}.{name}", unit, value=value, n=count, baseline=base(name), note=note)
        )
    return out


async def run(env: BenchEnv) -> list[Measurement]:
    results: list[Measurement] = []
    plan = steps()
    served, saturated, why = 0, None, ""
    one_room_p50: float | None = None
    load_before = load()
    async with SimServer(parse_rules(RULES), voice=ToneVoice()) as sim:
        home = Home(env, sim, max(plan))
        await home.start()
        assert home.storage is not None
        try:
            opened, pss_room = 0, 0.0
            for count in plan:
                if pss_room and available_mb() - (count - opened) * pss_room < MEMORY_RESERVE_MB:
                    saturated, why = count, f"memory: {available_mb():.0f} MB available"
                    break
                try:
                    while opened < count:
                        await home.open(home.rooms[opened])
                        opened += 1
                except RuntimeError as exc:  # the machine ran out: the steps before stand
                    saturated, why = count, f"room {opened} did not start: {str(exc)[:300]}"
                    break
                rooms = home.rooms[:count]
                cpu_before = sum(room.cpu() for room in rooms) + cpu_s_or_zero(home.storage.pid)
                rest_before = time.process_time() + home.nats_cpu()
                turns: list[Turn] = []
                for round_ in range(ROUNDS):
                    got = await asyncio.gather(*(home.turn(room, count * 100 + round_) for room in rooms))
                    turns += [t for t in got if t is not None]
                cpu = sum(room.cpu() for room in rooms) + cpu_s_or_zero(home.storage.pid) - cpu_before
                rest = time.process_time() + home.nats_cpu() - rest_before
                storage_pss = pss_mb(home.storage.pid)
                pss_room = sum(room.pss() for room in rooms) / count + storage_pss / count
                rss_room = sum(room.rss() for room in rooms) / count
                figures = step_figures(count, turns, cpu / (count * ROUNDS), pss_room, rss_room)
                results += figures
                results.append(
                    Measurement(
                        f"rooms.{count}.bus_and_model_cpu_per_turn",
                        "cpu s",
                        value=rest / (count * ROUNDS),
                        n=count * ROUNDS,
                        baseline="rooms.1.bus_and_model_cpu_per_turn" if count > 1 else None,
                        note="nats-server and this process (the simulator, the rooms' harness) per turn",
                    )
                )
                user_ms = [t.user_ms for t in turns]
                if count == 1 and user_ms:
                    one_room_p50 = percentile(user_ms, 50)
                p99 = percentile(user_ms, 99) if user_ms else None
                all_correct = len(turns) == count * ROUNDS
                within = one_room_p50 is not None and p99 is not None and p99 <= SATURATED_X * one_room_p50
                if all_correct and within:
                    served = count
                elif saturated is None:
                    saturated = count
                    why = "a turn not correct" if not all_correct else f"user-turn p99 {p99:.0f} ms"
                    break  # past saturation the next steps only take longer
        finally:
            await home.stop()
    storage_jwt = home.storage_jwt
    raised = f" (nats-server max_control_line {MAX_CONTROL_LINE})"
    past = f"saturated at {saturated} ({why})" if saturated else f"not saturated up to {plan[-1]} rooms"
    results.append(
        Measurement(
            "rooms.served",
            "rooms",
            value=served,
            n=len(plan),
            note=(
                f"most rooms served at once with every turn correct and the user turn's p99 within "
                f"{SATURATED_X:g}x the one-room p50; {past}; {os.cpu_count()} CPUs, load average "
                f"{load_before} before, {load()} after (the machine is shared); one storage, the "
                f"simulator in the bench process, auth on (each room's own identities); the shared "
                f"storage's JWT for {len(home.rooms)} rooms {storage_jwt} bytes{raised}"
            ),
            extra={
                "steps": plan,
                "rounds": ROUNDS,
                "saturated_at": saturated,
                "why": why,
                "storage_jwt_bytes": storage_jwt,
            },
        )
    )
    return results
