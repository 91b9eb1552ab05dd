"""The whole stack as `huxley up` runs it, for the chaos, soak and fuzz runs.

nats-server and the five services are children of `huxley up`'s own
Supervisor (restarts with backoff, the health watchdog, nats-server kept
alive), driven in this process. audio-io is the real service with its web
backend: the household's web client connects to its gateway. The model is
the local Realtime simulator, in this process, so the run reads what it was
asked to say (`sim.responses`). A bus recorder keeps every bridge, focus and
audio event the driver saw (none while the bus itself is down).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg

from bench.chaos.claim_skill import install
from huxley_cli.natsserver import NatsServer, free_port
from huxley_cli.supervisor import ChildSpec, Supervisor
from huxley_cli.up_auth import UpAuth
from huxley_cli.watchdog import WatchdogConfig
from huxley_realtime_sim import SimServer
from huxley_realtime_sim.rules import load_rules
from huxley_realtime_sim.voice import ToneVoice
from huxley_runtime.rpc import request
from huxley_runtime.settings import HuxleySettings
from huxley_wire.errors import WireError
from huxley_wire.messages.common import Health, HealthRequest
from huxley_wire.permissions import harness_identity
from huxley_wire.subjects import Subjects

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RULES = HERE / "rules.yaml"
PERSONA = "chaos"
BOOK_ID = "Chirps"
BOOK_SECONDS = 120

# Start order, as in `huxley up`.
SERVICES = {
    "storage": "huxley_storage",
    "focus": "huxley_focus",
    "skill-host": "huxley_skill_host",
    "realtime-bridge": "huxley_bridge",
    "audio-io": "huxley_audio_io",
}
SKILLS = {"system", "timers", "reminders", "audiobooks", "chaosclaim"}
TOOLS = {"set_timer", "add_reminder", "play_audiobook", "open_intercom"}


@dataclass
class Event:
    at: float  # time.monotonic() on arrival
    subject: str  # without the site prefix, e.g. "bridge.event.turn"
    body: dict[str, Any]


@dataclass
class BusRecorder:
    events: list[Event] = field(default_factory=list)

    async def start(self, nc: Client, subjects: Subjects) -> None:
        prefix = subjects.prefix + "."

        async def keep(msg: Msg) -> None:
            with contextlib.suppress(ValueError):
                body = json.loads(msg.data)
                if isinstance(body, dict):
                    self.events.append(Event(time.monotonic(), msg.subject.removeprefix(prefix), body))

        for subject in (
            subjects.bridge_events(),
            subjects.focus_events(),
            subjects.audio_played(),
            subjects.audio_events(),
        ):
            await nc.subscribe(subject, cb=keep)
        await nc.flush()

    def of(self, subject: str) -> list[Event]:
        return [e for e in self.events if e.subject == subject]


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
system_prompt: You are Huxley, under chaos.
skills:
  system:
    timezone: Europe/London
  timers:
    fire_prompt: "Tell the user: {{message}}"
  reminders:
    fire_prompt: "Tell the user: {{message}}"
  audiobooks:
    library: audiobooks
  chaosclaim: {{}}
""".lstrip()
    )
    return path


def make_book(data_dir: Path) -> Path:
    """A chirp (300 Hz rising slowly) as the household's audiobook."""
    target = data_dir / PERSONA / "audiobooks" / f"{BOOK_ID}.wav"
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi",
            "-i", f"aevalsrc=0.3*sin(2*PI*(300*t+2*t*t)):s=24000:d={BOOK_SECONDS}",
            "-ac", "1", "-ar", "24000", "-c:a", "pcm_s16le", str(target),
        ],
        check=True,
    )  # fmt: skip
    return target


class ChaosStack:
    """Bring-up, health, pids and the driver's own bus connection."""

    def __init__(self, root: Path, *, site: str = "chaos", watchdog: WatchdogConfig | None = None) -> None:
        self.root = root
        self.site = site
        self.subjects = Subjects(site)
        self.watchdog = watchdog or WatchdogConfig.from_env()  # as `huxley up` runs it
        self.web_port = free_port()
        self.nats_server = NatsServer(store_dir=root / "nats", log_file=root / "nats.log")
        self.sim = SimServer(load_rules(RULES), voice=ToneVoice())
        self.recorder = BusRecorder()
        self.supervisor: Supervisor | None = None
        self._nc: Client | None = None
        self._out: TextIO | None = None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def nc(self) -> Client:
        assert self._nc is not None, "the stack is not started"
        return self._nc

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.web_port}/ws"

    async def __aenter__(self) -> ChaosStack:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        # Authentication on, as `huxley up` runs it: the keys, the server config
        # and one identity per service; the driver is a test harness identity.
        auth = UpAuth.prepare(self.data_dir, self.site)
        self.nats_server.config_file = auth.config
        await asyncio.to_thread(self.nats_server.start)
        await self.sim.start()
        make_book(self.data_dir)
        dist = install(self.root / "site-packages")
        persona = write_persona(self.root / "persona" / f"{PERSONA}.yaml")
        env = {
            "HUXLEY_NATS_URL": self.nats_server.url,
            "HUXLEY_SITE": self.site,
            "HUXLEY_DATA_DIR": str(self.data_dir),
            "HUXLEY_PERSONA": str(persona),
            "HUXLEY_PERSONAS_DIR": str(REPO / "personas"),
            "HUXLEY_LOG_JSON": "1",
            "HUXLEY_LOG_LEVEL": "info",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join([str(dist), str(REPO)]),
            "HUXLEY_STORAGE_BACKUPS": "0",
            "HUXLEY_SCHEMA_WAIT_S": "0.2",
            "HUXLEY_AUDIO_BACKEND": "web",
            "HUXLEY_WEB_PORT": str(self.web_port),
            "HUXLEY_REALTIME_URL": self.sim.url,
        }
        specs = [
            ChildSpec(
                name,
                [sys.executable, "-m", module],
                {**env, **auth.child_env(name, str(persona), REPO / "personas")},
                health=name,
            )
            for name, module in SERVICES.items()
        ]
        bus = auth.observer(
            HuxleySettings(nats_url=self.nats_server.url, site=self.site, _env_file=None)  # type: ignore[call-arg]
        )
        driver = harness_identity(self.site, "chaos-driver")
        driver_creds = auth.store.ensure(driver, int(time.time()))
        self._out = (self.root / "up.log").open("w")
        self.supervisor = Supervisor(specs, self._out, bus=bus, watchdog=self.watchdog, nats=self.nats_server)
        self.supervisor.start()
        for attempt in range(20):  # a loaded machine may be slow to accept the first one
            try:
                self._nc = await nats.connect(
                    self.nats_server.url,
                    name="chaos-driver",
                    user_credentials=str(driver_creds),
                    inbox_prefix=driver.inbox_prefix,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.2,
                    connect_timeout=2,
                )
                break
            except (OSError, nats.errors.Error):
                if attempt == 19:
                    raise
                await asyncio.sleep(0.5)
        await self.recorder.start(self._nc, self.subjects)

    async def stop(self) -> None:
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.close(), 5)
        if self.supervisor is not None:
            await self.supervisor.stop()
        await asyncio.to_thread(self.nats_server.stop)
        await self.sim.stop()
        if self._out is not None:
            self._out.close()

    # -- health ------------------------------------------------------------------------
    async def health(self, service: str, timeout: float = 1.0) -> Health | None:
        try:
            return await request(self.nc, self.subjects.health(service), HealthRequest(), timeout=timeout)
        except (WireError, OSError, TimeoutError, nats.errors.Error):
            return None

    async def healthy(self, service: str) -> bool:
        health = await self.health(service)
        if health is None or health.status != "ok":
            return False
        if service == "skill-host":
            states = health.detail.get("skills", {})
            return all(states.get(s, {}).get("status") == "ok" for s in SKILLS)
        if service == "realtime-bridge":
            return health.detail.get("wired") is True
        return True

    async def all_healthy(self) -> bool:
        results = await asyncio.gather(*(self.healthy(s) for s in SERVICES))
        return all(results)

    async def wait_ready(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if await self.all_healthy() and self.declared_tools() >= TOOLS:
                return
            await asyncio.sleep(0.25)
        states = {s: await self.health(s) for s in SERVICES}
        raise RuntimeError(f"the stack did not come up in {timeout_s} s: {states}\n{self.log_tail()}")

    def declared_tools(self) -> set[str]:
        tools: set[str] = set()
        for conn in self.sim.connections.values():
            tools |= conn.conversation.declared_tools
        return tools

    # -- processes ---------------------------------------------------------------------
    def pid_of(self, target: str) -> int | None:
        """The pid of a service's current process, or of nats-server."""
        if target == "nats-server":
            process = self.nats_server.process
            return process.pid if process is not None and process.poll() is None else None
        assert self.supervisor is not None
        for child in self.supervisor.children:
            if child.spec.name == target and child.process is not None and child.process.returncode is None:
                return child.process.pid
        return None

    def restarts(self) -> dict[str, int]:
        assert self.supervisor is not None
        counts = {c.spec.name: c.restarts for c in self.supervisor.children}
        counts["nats-server"] = self.supervisor.nats_restarts
        return counts

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return (self.root / "up.log").read_text(errors="replace")[-chars:]
        except OSError:
            return ""
