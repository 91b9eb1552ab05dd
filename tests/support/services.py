"""Running services against the test nats-server, in-process or as processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from nats.aio.client import Client

from huxley_runtime.rpc import request_with_retry
from huxley_runtime.service import Service
from huxley_runtime.settings import HuxleySettings
from huxley_wire.messages.common import Health, HealthRequest
from huxley_wire.subjects import Subjects
from support.auth import env_with_identity, with_identity
from support.waiting import until

REPO = Path(__file__).resolve().parents[2]


@contextlib.asynccontextmanager
async def running(service_class: type[Service], settings: HuxleySettings) -> AsyncIterator[Any]:
    """Start a service in this process and stop it at the end of the block; it
    connects as its own identity unless the settings name creds."""
    service = service_class(with_identity(settings, service_class.name))
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


async def wait_healthy(nc: Client, site: str, service: str, timeout_s: float = 20.0) -> Health:
    subjects = Subjects(site)
    return await request_with_retry(
        nc, subjects.health(service), HealthRequest(), timeout=1.0, deadline_s=timeout_s
    )


class ServiceProcess:
    """A service as a child process (`python -m <module>`), its output kept in a
    file; it connects as its own identity unless `env` names creds (or
    `identity` is False: a satellite's audio-io asks its local leaf server
    with no creds at all)."""

    def __init__(
        self, module: str, env: dict[str, str], log_path: Path, cwd: Path = REPO, *, identity: bool = True
    ) -> None:
        self.module = module
        self.env = env_with_identity(module, env) if identity else env
        self.log_path = log_path
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module],
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
            cwd=self.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def terminate(self, timeout_s: float = 10.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return await self.wait(timeout_s)

    async def wait(self, timeout_s: float) -> int:
        process = self.process
        assert process is not None
        try:
            await until(lambda: process.poll() is not None, timeout_s, f"{self.module} to exit")
        except AssertionError as exc:
            raise TimeoutError(f"{exc}\n{self.output()}") from None
        return process.returncode

    def kill(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.kill()
            self.process.wait()

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""
