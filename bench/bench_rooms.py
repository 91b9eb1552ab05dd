"""Many rooms on one bus (issue 16 item 4).

Each room is a site with its own focus, skill-host (the timers skill),
realtime bridge and audio-io (file backend), each its own process; one
storage serves every room and the local Realtime simulator is the model.
At each step N rooms press PTT at the same moment; the model answers with a
`set_timer` tool call (1 s) and an acknowledgement, and the timer fires as an
injected turn. A room's turn is correct when, in that room and only there,
the tool call succeeded, the user turn ended, the timer's inject fired and
its injected turn said the timer's message.

Figures per step (rooms.<N>.*), the one-room step being the baseline measured
in the same run: release -> user turn ended, release -> injected turn ended,
CPU seconds per room for the step (its four processes), resident memory per
room. `rooms.served` is the largest N whose turns were all correct with the
user turn's p99 within SATURATED_X times the one-room p50; the first N past
it is where this machine saturates.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
from nats.aio.msg import Msg

from bench.harness import BenchEnv, Measurement, latency
from huxley_realtime_sim import SimServer, parse_rules
from huxley_realtime_sim.voice import ToneVoice
from huxley_runtime.bus import settle
from huxley_runtime.rpc import request
from huxley_wire.audio import FRAME_BYTES, AudioFrame, encode_frame, now_us
from huxley_wire.codec import encode
from huxley_wire.errors import WireError
from huxley_wire.messages import audio as am
from huxley_wire.messages.common import Health, HealthRequest
from huxley_wire.subjects import Subjects

STEPS = (1, 2, 4, 8, 12, 16)
SATURATED_X = 2.0  # a step whose user-turn p99 passes this many one-room p50s is saturated
TEA = "Tea is ready."
RULES = f"""
speed: 1
default:
  say: "Timer set."
  tools: [{{name: set_timer, arguments: {{seconds: 1, message: "{TEA}"}}}}]
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
FRAME = bytes(range(256)) * (FRAME_BYTES // 256) + bytes(FRAME_BYTES % 256)
CLK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass
class Room:
    site: str
    procs: list[asyncio.subprocess.Process] = field(default_factory=list)

    @property
    def subjects(self) -> Subjects:
        return Subjects(self.site)

    def cpu(self) -> float:
        return sum(cpu_s(p.pid) for p in self.procs)

    def rss(self) -> float:
        return sum(rss_mb(p.pid) for p in self.procs)


class Home:
    def __init__(self, env: BenchEnv, sim: SimServer, count: int) -> None:
        tag = secrets.token_hex(3)
        self.rooms = [Room(f"room{i}-{tag}") for i in range(count)]
        self.root = env.workdir / f"rooms-{tag}"
        persona = self.root / "rooms.yaml"
        persona.parent.mkdir(parents=True, exist_ok=True)
        persona.write_text(PERSONA)
        self.env = {
            **os.environ,
            "HUXLEY_NATS_URL": env.nats_url,
            "HUXLEY_PERSONA": str(persona),
            "HUXLEY_PERSONAS_DIR": str(self.root),
            "HUXLEY_LOG_LEVEL": "warning",
            "HUXLEY_STORAGE_BACKUPS": "0",
            "HUXLEY_AUDIO_BACKEND": "file",
            "HUXLEY_REALTIME_URL": sim.url,
            "HUXLEY_SCHEMA_WAIT_S": "0.2",
            "PYTHONUNBUFFERED": "1",
        }
        self.nats_url = env.nats_url
        self.storage: asyncio.subprocess.Process | None = None
        self.events: dict[str, list[tuple[str, dict[str, Any], float]]] = defaultdict(list)
        self.changed = asyncio.Condition()

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
        self.nc = await nats.connect(self.nats_url)
        for subject in (
            "bridge.event.turn",
            "bridge.event.tool_call",
            "bridge.event.transcript",
            "focus.event.inject",
        ):
            await self.nc.subscribe(f"huxley.*.{subject}", cb=self._keep)
        await settle(self.nc)
        sites = [room.site for room in self.rooms]
        storage_env = {
            **self.env,
            "HUXLEY_SITE": sites[0],
            "HUXLEY_STORAGE_SITES": ",".join(sites[1:]),
            "HUXLEY_DATA_DIR": str(self.root / "storage"),
        }
        self.storage = await self._spawn("huxley_storage", storage_env, self.root / "logs" / "storage.log")
        await self._healthy(self.rooms[0], "storage")

    async def open(self, room: Room) -> None:
        """Start a room's four services and wait until it can take a turn."""
        env = {
            **self.env,
            "HUXLEY_SITE": room.site,
            "HUXLEY_DATA_DIR": str(self.root / room.site),
            "HUXLEY_AUDIO_FILE_OUT": str(self.root / room.site / "speaker.wav"),
        }
        for name, module in ROOM_SERVICES.items():
            room.procs.append(await self._spawn(module, env, self.root / "logs" / f"{room.site}-{name}.log"))
        await self._healthy(room, "focus")
        await self._healthy(room, "audio-io")
        await self._healthy(
            room, "skill-host", lambda h: h.detail.get("skills", {}).get("timers", {}).get("status") == "ok"
        )
        await self._healthy(room, "realtime-bridge", lambda h: h.detail.get("wired") is True)

    async def _healthy(self, room: Room, service: str, accept: Any = lambda h: True) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                health: Health = await request(
                    self.nc, room.subjects.health(service), HealthRequest(), timeout=1.0
                )
                if health.status == "ok" and accept(health):
                    return
            except WireError:
                pass
            await asyncio.sleep(0.2)
        raise RuntimeError(f"{service} of {room.site} did not come up (logs in {self.root / 'logs'})")

    async def _keep(self, msg: Msg) -> None:
        _, site, *rest = msg.subject.split(".")
        async with self.changed:
            self.events[site].append((".".join(rest), json.loads(msg.data), time.perf_counter()))
            self.changed.notify_all()

    async def turn(self, room: Room, n: int) -> tuple[float, float] | None:
        """One press in `room`: (ms to the user turn's end, ms to the timer's
        injected turn's end), or None when the turn was not correct."""
        mark = len(self.events[room.site])
        press = f"r{n}-{room.site}"
        s = room.subjects
        await self.nc.publish(
            s.audio_ptt(), encode(am.PttEvent(action="start", press_id=press, ts_us=now_us()))
        )
        for seq in range(15):  # a real press: 20 ms frames in real time
            await self.nc.publish(
                s.audio_mic_assistant(), encode_frame(AudioFrame(press, seq, now_us(), FRAME))
            )
            await asyncio.sleep(0.02)
        stop = am.PttEvent(action="stop", press_id=press, ts_us=now_us() + 300_000, frames=15)
        released = time.perf_counter()
        await self.nc.publish(s.audio_ptt(), encode(stop))

        def seen(kind: str, test: Any) -> tuple[str, dict[str, Any], float] | None:
            return next((e for e in self.events[room.site][mark:] if e[0] == kind and test(e[1])), None)

        def ended(kind: str) -> Any:
            return seen("bridge.event.turn", lambda t: t["kind"] == kind and t["phase"] == "ended")

        try:
            async with asyncio.timeout(30), self.changed:
                await self.changed.wait_for(lambda: ended("user") and ended("injected"))
        except TimeoutError:
            return None
        user, injected = ended("user"), ended("injected")
        tool = seen("bridge.event.tool_call", lambda t: t["name"] == "set_timer")
        fired = seen("focus.event.inject", lambda i: i["status"] == "fired" and i["skill"] == "timers")
        said = seen("bridge.event.transcript", lambda t: t["role"] == "assistant" and t["text"] == TEA)
        injects = [
            e
            for e in self.events[room.site][mark:]
            if e[0] == "bridge.event.turn" and e[1]["kind"] == "injected" and e[1]["phase"] == "ended"
        ]
        if not (user and injected and tool and fired and said) or tool[1].get("error") or len(injects) != 1:
            return None
        if '"ok": true' not in tool[1].get("output", ""):
            return None
        return (user[2] - released) * 1e3, (injected[2] - released) * 1e3

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
        await self.nc.close()


async def run(env: BenchEnv) -> list[Measurement]:
    results: list[Measurement] = []
    served = 0
    saturated: int | None = None
    one_room_p50: float | None = None
    async with SimServer(parse_rules(RULES), voice=ToneVoice()) as sim:
        home = Home(env, sim, max(STEPS))
        await home.start()
        try:
            opened = 0
            for step, count in enumerate(STEPS):
                while opened < count:
                    await home.open(home.rooms[opened])
                    opened += 1
                rooms = home.rooms[:count]
                cpu_before = [room.cpu() for room in rooms]
                turns = await asyncio.gather(*(home.turn(room, step) for room in rooms))
                cpu_per_room = [room.cpu() - before for room, before in zip(rooms, cpu_before, strict=True)]
                correct = [t for t in turns if t is not None]
                user_ms = [t[0] for t in correct]
                inject_ms = [t[1] for t in correct]
                base = "rooms.1.user_turn" if count > 1 else None
                note = f"{len(correct)} of {count} rooms' turns correct, all pressing at once"
                user = latency(
                    f"rooms.{count}.user_turn", user_ms, base, note + "; PTT release -> user turn ended"
                )
                results.append(user)
                results.append(
                    latency(
                        f"rooms.{count}.timer_turn",
                        inject_ms,
                        "rooms.1.timer_turn" if count > 1 else None,
                        "PTT release -> the 1 s timer's injected turn ended",
                    )
                )
                results.append(
                    Measurement(
                        f"rooms.{count}.cpu_per_room",
                        "cpu s",
                        value=sum(cpu_per_room) / count,
                        n=count,
                        baseline="rooms.1.cpu_per_room" if count > 1 else None,
                        note="CPU of a room's focus, skill-host, bridge and audio-io over its turn",
                    )
                )
                results.append(
                    Measurement(
                        f"rooms.{count}.rss_per_room",
                        "MB",
                        value=sum(r.rss() for r in rooms) / count,
                        n=count,
                        note="resident memory of a room's four processes",
                    )
                )
                if count == 1 and user.p50 is not None:
                    one_room_p50 = user.p50
                within = (
                    one_room_p50 is not None
                    and user.p99 is not None
                    and user.p99 <= SATURATED_X * one_room_p50
                )
                if len(correct) == count and within:
                    served = count
                elif saturated is None:
                    saturated = count
                    break  # past saturation the next steps only take longer
        finally:
            await home.stop()
    past = saturated if saturated else f"more than {served}"
    results.append(
        Measurement(
            "rooms.served",
            "rooms",
            value=served,
            n=len(STEPS),
            note=(
                f"most rooms served at once with every turn correct and the user turn's p99 within "
                f"{SATURATED_X:g}x the one-room p50; saturated at {past} "
                f"on {os.cpu_count()} CPUs (one storage, the simulator in the bench process)"
            ),
        )
    )
    return results
