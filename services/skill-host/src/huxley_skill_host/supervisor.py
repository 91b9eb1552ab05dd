"""Supervised background tasks: `ctx.background_task` of every skill.

The policy (`RestartBudget`) is pure: given the time of a crash it says
whether to restart and after how long. The runner (`TaskSupervisor`) applies
it to asyncio tasks through the house's retry runner (huxley_runtime.retry),
with the clock and the sleep injectable so tests never wait.

Semantics (the reference's, exactly):
- each attempt awaits a fresh `coro_factory()`; a normal return ends the task;
- a crash with `restart_on_crash=False` ends it, no callback;
- otherwise the crash count of the current window (one hour from the window's
  first crash) goes up; past `max_restarts_per_hour` the task fails for good:
  a `PermanentFailure` is built and `on_permanent_failure` awaited once (its
  own errors are logged); else it sleeps min(2**count, 60) s and restarts;
- a name that is running can't be started again; `stop()` cancels them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from huxley_runtime.retry import retrying
from huxley_sdk import BackgroundTaskHandle, PermanentFailure, SkillLogger

WINDOW_S = 3600.0
MAX_BACKOFF_S = 60.0
STOP_GRACE_S = 5.0


def backoff_s(count: int) -> float:
    return float(min(2**count, MAX_BACKOFF_S))


@dataclass(frozen=True)
class Restart:
    delay_s: float
    count: int


@dataclass(frozen=True)
class GiveUp:
    count: int
    elapsed_in_window_s: float


class RestartBudget:
    """Crash accounting of one task."""

    def __init__(self, max_restarts: int, window_s: float = WINDOW_S) -> None:
        self.max_restarts = max_restarts
        self.window_s = window_s
        self.window_start: float | None = None
        self.count = 0

    def on_crash(self, now: float) -> Restart | GiveUp:
        if self.window_start is None or now - self.window_start >= self.window_s:
            self.window_start, self.count = now, 0
        self.count += 1
        if self.count > self.max_restarts:
            return GiveUp(count=self.count, elapsed_in_window_s=now - self.window_start)
        return Restart(delay_s=backoff_s(self.count), count=self.count)


class BudgetSchedule:
    """The budget as a retry schedule (huxley_runtime.retry) for the runner."""

    def __init__(self, budget: RestartBudget, clock: Callable[[], float]) -> None:
        self.budget = budget
        self.clock = clock
        self.decision: Restart | GiveUp | None = None

    def pause_s(self, retry: int, took_s: float, elapsed_s: float) -> float | None:
        self.decision = self.budget.on_crash(self.clock())
        return self.decision.delay_s if isinstance(self.decision, Restart) else None


CoroFactory = Callable[[], Coroutine[Any, Any, None]]
FailureCallback = Callable[[PermanentFailure], Awaitable[None]]


class TaskSupervisor:
    """Runs one skill's background tasks.

    `on_gave_up` (optional) hears about every permanent failure, so the host
    can show it in its health."""

    def __init__(
        self,
        logger: SkillLogger,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        on_gave_up: Callable[[PermanentFailure], None] | None = None,
    ) -> None:
        self.logger = logger
        self.clock = clock
        self.sleep = sleep
        self.on_gave_up = on_gave_up
        self._running: dict[str, asyncio.Task[None]] = {}

    @property
    def running(self) -> list[str]:
        return sorted(self._running)

    def start(
        self,
        name: str,
        coro_factory: CoroFactory,
        *,
        restart_on_crash: bool = True,
        max_restarts_per_hour: int = 10,
        on_permanent_failure: FailureCallback | None = None,
    ) -> BackgroundTaskHandle:
        if name in self._running:
            raise ValueError(f"background task {name!r} is already running")
        task = asyncio.get_running_loop().create_task(
            self._supervise(
                name, coro_factory, restart_on_crash, max_restarts_per_hour, on_permanent_failure
            ),
            name=f"bg:{name}",
        )
        self._running[name] = task
        task.add_done_callback(lambda t: self._forget(name, t))

        def cancel() -> None:
            task.cancel()

        return BackgroundTaskHandle(name=name, _cancel=cancel)

    def _forget(self, name: str, task: asyncio.Task[None]) -> None:
        if self._running.get(name) is task:
            del self._running[name]

    async def _supervise(
        self,
        name: str,
        coro_factory: CoroFactory,
        restart_on_crash: bool,
        max_restarts: int,
        on_permanent_failure: FailureCallback | None,
    ) -> None:
        schedule = BudgetSchedule(RestartBudget(max_restarts), self.clock)

        async def restarting(retry: int, exc: BaseException, pause_s: float) -> None:
            count = schedule.decision.count if schedule.decision is not None else retry
            await self.logger.awarning(
                "background_task_restarting",
                task=name,
                error=f"{type(exc).__name__}: {exc}",
                restart=count,
                of=max_restarts,
                delay_s=pause_s,
            )

        try:
            await retrying(
                schedule,
                coro_factory,
                retry_if=lambda exc: restart_on_crash and isinstance(exc, Exception),
                on_retry=restarting,
                sleep=self.sleep,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if isinstance(schedule.decision, GiveUp):
                await self._give_up(name, exc, schedule.decision, on_permanent_failure)
            else:
                await self.logger.aexception("background_task_crashed", task=name, restart=False)
            return
        await self.logger.adebug("background_task_finished", task=name)

    async def _give_up(
        self, name: str, exc: Exception, decision: GiveUp, callback: FailureCallback | None
    ) -> None:
        failure = PermanentFailure(
            name=name,
            last_exception_class=type(exc).__name__,
            last_exception_message=str(exc),
            restart_count=decision.count,
            elapsed_in_window_s=decision.elapsed_in_window_s,
        )
        await self.logger.aerror(
            "background_task_failed_permanently",
            task=name,
            error=f"{failure.last_exception_class}: {failure.last_exception_message}",
            restarts=failure.restart_count,
            window_s=round(failure.elapsed_in_window_s, 3),
        )
        if self.on_gave_up is not None:
            self.on_gave_up(failure)
        if callback is None:
            return
        try:
            await callback(failure)
        except Exception:
            await self.logger.aexception("on_permanent_failure_raised", task=name)

    async def wait_idle(self) -> None:
        """Return once no task is running (tests, and orderly shutdowns)."""
        while self._running:
            await asyncio.wait(list(self._running.values()))

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Cancel every task and wait (a bounded time) for them to finish."""
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        if tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), grace_s)
