"""Running every service as a supervised child process for `huxley up`.

Each child is restarted when it exits on its own, after a backoff that grows
with quick successive crashes and resets once a child has run for a while.
Output of every child goes to one stream, each line prefixed with its name.
Stopping sends SIGTERM to each child's process group, then SIGKILL to what is
left after a grace period, so no process outlives `huxley up`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from dataclasses import dataclass, field
from typing import TextIO

STABLE_AFTER_S = 30.0


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
        delay = min(self.base_s * (2**self.crashes), self.max_s)
        self.crashes += 1
        return delay


@dataclass
class ChildSpec:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


class Child:
    def __init__(self, spec: ChildSpec, out: TextIO, width: int) -> None:
        self.spec = spec
        self.out = out
        self.width = width
        self.process: asyncio.subprocess.Process | None = None
        self.policy = RestartPolicy()
        self.restarts = 0

    def emit(self, line: str) -> None:
        self.out.write(f"{self.spec.name:<{self.width}} | {line}\n")
        self.out.flush()

    async def run(self, stopping: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stopping.is_set():
            started = loop.time()
            self.process = await asyncio.create_subprocess_exec(
                *self.spec.argv,
                env={**os.environ, **self.spec.env},
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,  # its own process group, so we can stop all of it
            )
            assert self.process.stdout is not None
            while line := await self.process.stdout.readline():
                self.emit(line.decode(errors="replace").rstrip())
            code = await self.process.wait()
            if stopping.is_set():
                return
            delay = self.policy.after_exit(loop.time() - started)
            self.restarts += 1
            self.emit(f"exited with code {code}; restarting in {delay:.1f} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)

    def signal(self, sig: int) -> None:
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, sig)


class Supervisor:
    def __init__(self, specs: list[ChildSpec], out: TextIO | None = None) -> None:
        width = max((len(s.name) for s in specs), default=8)
        self.children = [Child(spec, out or sys.stdout, width) for spec in specs]
        self.stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(c.run(self.stopping), name=c.spec.name) for c in self.children]

    async def stop(self, grace_s: float = 10.0) -> None:
        self.stopping.set()
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
