"""An ordered lane: coroutines run one after the other, in the order queued.

The adapter keeps one per peer whose requests must stay in order (focus,
audio-io, storage) while the loop itself never waits on them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from huxley_runtime.logging import get_logger

log = get_logger(component="adapter")

Job = Callable[[], Awaitable[None]]


class Lane:
    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._work(), name=f"lane-{self.name}")

    def put(self, job: Job) -> None:
        self._queue.put_nowait(job)

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("lane_job_failed", lane=self.name)
            finally:
                self._queue.task_done()

    async def drain(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
