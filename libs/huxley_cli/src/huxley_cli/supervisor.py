"""Running every service as a supervised child process for `huxley up`.

Each child is restarted when it exits on its own, after a backoff that grows
with quick successive crashes and resets once a child has run for a while.
A child that is alive but stuck is killed and so restarted too: with a bus
to watch on, the supervisor asks each service's own instance for its health
(see watchdog) and SIGKILLs one that stops answering. The nats-server that
`huxley up` started is restarted on its port when it dies.

Output of every child goes to one stream, each line prefixed with its name;
lines of any length are read (a long one is cut for display), so a child
never blocks on a full pipe. Stopping sends SIGTERM to each child's process
group, then SIGKILL to what is left after a grace period, so no process
outlives `huxley up`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from nats.aio.client import Client

from huxley_cli.forking import ForkFailed, ForkServer, Running, reap_orphans, until_exited
from huxley_cli.lines import LineSplitter
from huxley_cli.natsserver import NatsServer
from huxley_cli.watchdog import Liveness, WatchdogConfig, probe_health
from huxley_runtime.bus import connect
from huxley_runtime.retry import retrying
from huxley_runtime.settings import HuxleySettings, new_instance_id
from huxley_wire.subjects import Subjects

STABLE_AFTER_S = 30.0
READ_CHUNK = 64 * 1024


@dataclass
class RestartPolicy:
    """Pure backoff bookkeeping: how long to wait before the next start."""

    base_s: float = 0.5
    max_s: float = 30.0
    stable_after_s: float = STABLE_AFTER_S
    crashes: int = 0

    def after_exit(self, ran_for_s: float) -> float:
        if ran_for_s >= self.stable_after_s:
            self.crashes = 0
        delay = min(self.base_s * float(2**self.crashes), self.max_s)
        self.crashes += 1
        return delay

    def pause_s(self, retry: int, took_s: float, elapsed_s: float) -> float:
        """As a retry schedule (huxley_runtime.retry): a run is an attempt."""
        return self.after_exit(took_s)


class Exited(Exception):
    """A child (or nats-server) exited on its own: the runner restarts it."""

    def __init__(self, code: int) -> None:
        super().__init__(f"exited with code {code}")
        self.code = code


@dataclass
class ChildSpec:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    health: str | None = None  # the service whose health subject tells it is alive
    site: str | None = None  # the room it serves (`up --sites`); None: the bus's site


class Child:
    def __init__(
        self,
        spec: ChildSpec,
        out: TextIO,
        width: int,
        watchdog: WatchdogConfig,
        forks: ForkServer | None = None,
        on_exit: Callable[[], None] | None = None,
    ) -> None:
        self.spec = spec
        self.out = out
        self.width = width
        self.forks = forks
        self.on_exit = on_exit
        self.process: Running | None = None
        self.instance = ""
        self.policy = RestartPolicy()
        self.liveness = Liveness(watchdog)
        self.restarts = 0

    def emit(self, line: str) -> None:
        # Never let our own output fail the reader: the child's pipe must keep draining.
        with contextlib.suppress(OSError, ValueError):
            self.out.write(f"{self.spec.name:<{self.width}} | {line}\n")
            self.out.flush()

    async def run(self, stopping: asyncio.Event) -> None:
        """Start the child, and again after it exits, until `stopping`."""

        async def life() -> None:
            code = await self._live()
            if self.on_exit is not None:
                self.on_exit()
            if not stopping.is_set():
                raise Exited(code)

        def restarting(retry: int, exc: BaseException, pause_s: float) -> None:
            self.restarts += 1
            self.emit(f"{exc}; restarting in {pause_s:.1f} s")

        async def pause(seconds: float) -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), seconds)

        if stopping.is_set():
            return
        with contextlib.suppress(Exited):  # stopping while it was down
            await retrying(
                self.policy,
                life,
                retry_if=lambda exc: isinstance(exc, Exited),
                keep_going=lambda: not stopping.is_set(),
                on_retry=restarting,
                sleep=pause,
            )

    async def _live(self) -> int:
        """One life of the child: start it, pass its output on, its exit code."""
        # A fresh instance id per start, known here, so the watchdog asks this process.
        self.instance = new_instance_id(self.spec.name)
        self.process = await self._launch({**os.environ, **self.spec.env, "HUXLEY_INSTANCE": self.instance})
        self.liveness.grace(asyncio.get_running_loop().time())
        assert self.process.stdout is not None
        await self._pump(self.process.stdout)
        return await self.process.wait()

    async def _launch(self, env: dict[str, str]) -> Running:
        """Forked by the fork server when it can (a `python -m` service),
        else executed; the same process either way to the rest of us."""
        target = self.forks.forkable(self.spec.argv) if self.forks is not None else None
        if self.forks is not None and target is not None:
            try:
                return await self.forks.spawn(*target, env)
            except ForkFailed as exc:
                self.emit(f"not forked ({exc}): executing it")
        return await asyncio.create_subprocess_exec(
            *self.spec.argv,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so we can stop all of it
        )

    async def _pump(self, stream: asyncio.StreamReader) -> None:
        splitter = LineSplitter()
        while chunk := await stream.read(READ_CHUNK):
            for line in splitter.feed(chunk):
                self.emit(line)
        for line in splitter.end():
            self.emit(line)

    async def check(self, nc: Client, subjects: Subjects) -> None:
        """One health ask; kills the child when it is the last straw."""
        process, instance = self.process, self.instance
        loop = asyncio.get_running_loop()
        if self.spec.health is None or process is None or process.returncode is not None:
            return
        if not self.liveness.counting(loop.time()) or not self.liveness.due(loop.time()):
            return
        self.liveness.asked(loop.time())
        config = self.liveness.config
        if self.spec.site is not None:
            subjects = Subjects(self.spec.site)
        answered = await probe_health(nc, subjects.health(self.spec.health), instance, config.timeout_s)
        if answered is None or process is not self.process:
            return  # the bus failed us, or the child restarted meanwhile
        if self.liveness.record(answered):
            self.emit(
                f"no health answer {config.failures} times in a row ({config.retry_s:g} s apart): "
                "stuck; killing it (SIGKILL) to restart it"
            )
            self.signal(signal.SIGKILL)

    def signal(self, sig: int) -> None:
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, sig)


async def exited(process: subprocess.Popen[bytes]) -> int:
    """Wait for a Popen child to exit without a thread or a poll loop (a pidfd)."""
    with contextlib.suppress(OSError):  # gone already, or no pidfd here: wait() says
        await until_exited(process.pid)
    return process.wait()


class Supervisor:
    def __init__(
        self,
        specs: list[ChildSpec],
        out: TextIO | None = None,
        *,
        bus: HuxleySettings | None = None,
        watchdog: WatchdogConfig | None = None,
        nats: NatsServer | None = None,
        forks: ForkServer | None = None,
    ) -> None:
        """`bus`: settings (URL, site, credentials) to watch health on; None
        turns the watchdog off. `nats`: a started nats-server to keep alive.
        `forks`: a started fork server to fork `python -m` children from
        (closed at stop); None executes every child."""
        self.out = out or sys.stdout
        self.watchdog = watchdog or WatchdogConfig()
        width = max((len(s.name) for s in specs), default=8)
        self.forks = forks
        # Forked services are adopted (we are a subreaper), and so are their
        # own children when a service dies first: reaped as each child exits.
        reap = self._reap_orphans if forks is not None else None
        self.children = [Child(spec, self.out, width, self.watchdog, forks, reap) for spec in specs]
        self.bus = bus
        self.nats = nats
        self.nats_restarts = 0
        self.stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._helpers: list[asyncio.Task[None]] = []

    def say(self, line: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.out.write(f"huxley: {line}\n")
            self.out.flush()

    def _reap_orphans(self) -> None:
        known = {
            c.process.pid for c in self.children if c.process is not None and c.process.returncode is None
        }
        if self.nats is not None and self.nats.process is not None:
            known.add(self.nats.process.pid)
        if self.forks is not None:  # and the services it forked that nobody waited for yet
            known |= {self.forks.pid, *self.forks.live}
        reap_orphans(known)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(c.run(self.stopping), name=c.spec.name) for c in self.children]
        if self.bus is not None and any(c.spec.health for c in self.children):
            self._helpers.append(asyncio.create_task(self._watch(self.bus), name="watchdog"))
        if self.nats is not None:
            self._helpers.append(asyncio.create_task(self._keep_nats(self.nats), name="nats-keeper"))

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)

    async def _watch(self, bus: HuxleySettings) -> None:
        loop = asyncio.get_running_loop()
        nc = await connect(bus, "huxley-up-watchdog")
        subjects = Subjects(bus.site)
        bus_was_down = False
        try:
            while not self.stopping.is_set():
                if not nc.is_connected:
                    bus_was_down = True
                else:
                    if bus_was_down:  # services reconnect too: give them the grace period
                        for child in self.children:
                            child.liveness.grace(loop.time())
                        bus_was_down = False
                    await asyncio.gather(*(c.check(nc, subjects) for c in self.children))
                await self._pause(self.watchdog.pace_s)
        finally:
            with contextlib.suppress(Exception):
                await nc.close()

    async def _keep_nats(self, server: NatsServer) -> None:
        async def life() -> None:
            if server.process is None:  # a restart (the first start was `huxley up`'s)
                await asyncio.to_thread(server.start)
                self.nats_restarts += 1
                self.say(f"nats-server is back at {server.url}")
            assert server.process is not None
            code = await exited(server.process)
            if self.stopping.is_set():
                return
            server.process = None
            raise Exited(code)

        def restarting(retry: int, exc: BaseException, pause_s: float) -> None:
            if isinstance(exc, Exited):
                self.say(f"nats-server {exc}; restarting it on port {server.port}")
            else:
                self.say(f"nats-server did not start again: {exc}")

        with contextlib.suppress(Exception):  # stopping while it was down (or failing to start)
            await retrying(
                RestartPolicy(),
                life,
                retry_if=lambda exc: isinstance(exc, Exception),
                keep_going=lambda: not self.stopping.is_set(),
                on_retry=restarting,
                sleep=self._pause,
            )

    async def stop(self, grace_s: float = 10.0) -> None:
        self.stopping.set()
        if self.forks is not None:  # no new starts; the running services stop below
            self.forks.close()
        for helper in self._helpers:
            helper.cancel()
        await asyncio.gather(*self._helpers, return_exceptions=True)
        for child in self.children:
            child.signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), grace_s)
        except TimeoutError:
            for child in self.children:
                child.signal(signal.SIGKILL)
            await asyncio.gather(*self._tasks, return_exceptions=True)
        # Anything a child left behind in its process group goes too.
        for child in self.children:
            child.signal(signal.SIGKILL)
