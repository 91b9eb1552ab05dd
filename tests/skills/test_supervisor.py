"""The background-task supervisor: the pure restart budget, and the runner
with a fake clock and sleep (no test waits for a backoff)."""

from __future__ import annotations

import asyncio

import pytest

from huxley_sdk import PermanentFailure
from huxley_sdk.testing import RecordingLogger
from huxley_skill_host.supervisor import GiveUp, Restart, RestartBudget, TaskSupervisor, backoff_s


def test_backoff_doubles_up_to_a_minute():
    assert [backoff_s(n) for n in (1, 2, 3, 5, 6, 7, 20)] == [2, 4, 8, 32, 60, 60, 60]


def test_budget_gives_up_past_the_limit_within_the_hour():
    budget = RestartBudget(max_restarts=3)
    assert budget.on_crash(100.0) == Restart(delay_s=2, count=1)
    assert budget.on_crash(110.0) == Restart(delay_s=4, count=2)
    assert budget.on_crash(120.0) == Restart(delay_s=8, count=3)
    assert budget.on_crash(130.0) == GiveUp(count=4, elapsed_in_window_s=30.0)


def test_budget_window_restarts_an_hour_after_it_opened():
    budget = RestartBudget(max_restarts=2)
    budget.on_crash(0.0)
    budget.on_crash(1000.0)
    assert budget.on_crash(3600.0) == Restart(delay_s=2, count=1)  # a fresh window
    assert budget.on_crash(3601.0) == Restart(delay_s=4, count=2)
    assert isinstance(budget.on_crash(3602.0), GiveUp)


def test_zero_budget_gives_up_at_the_first_crash():
    assert RestartBudget(max_restarts=0).on_crash(5.0) == GiveUp(count=1, elapsed_in_window_s=0.0)


class FakeTime:
    """A clock that moves only when the supervisor sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def make(on_gave_up=None):
    time, logger = FakeTime(), RecordingLogger()
    return TaskSupervisor(logger, clock=time.clock, sleep=time.sleep, on_gave_up=on_gave_up), time, logger


async def idle(supervisor: TaskSupervisor) -> None:
    async with asyncio.timeout(5):
        await supervisor.wait_idle()


async def test_each_attempt_gets_a_fresh_coroutine_and_failure_is_reported_once():
    gave_up: list[PermanentFailure] = []
    supervisor, time, logger = make(on_gave_up=gave_up.append)
    attempts = 0
    failures: list[PermanentFailure] = []

    async def crash() -> None:
        nonlocal attempts
        attempts += 1
        raise RuntimeError(f"boom {attempts}")

    async def on_failure(failure: PermanentFailure) -> None:
        failures.append(failure)

    supervisor.start("listener", crash, max_restarts_per_hour=3, on_permanent_failure=on_failure)
    await idle(supervisor)
    assert attempts == 4  # the first run and three restarts
    assert time.sleeps == [2, 4, 8]
    assert len(failures) == 1 and failures == gave_up
    failure = failures[0]
    assert (failure.name, failure.last_exception_class, failure.last_exception_message) == (
        "listener",
        "RuntimeError",
        "boom 4",
    )
    assert failure.restart_count == 4 and failure.elapsed_in_window_s == 14.0
    assert len(logger.named("background_task_restarting")) == 3
    assert logger.named("background_task_failed_permanently")[0].level == "error"


async def test_a_normal_return_ends_it_and_the_name_can_be_used_again():
    supervisor, time, _ = make()
    runs = 0

    async def once() -> None:
        nonlocal runs
        runs += 1

    supervisor.start("job", once)
    await idle(supervisor)
    supervisor.start("job", once)
    await idle(supervisor)
    assert runs == 2
    assert time.sleeps == []


async def test_no_restart_when_asked_and_no_callback():
    supervisor, time, logger = make()
    called = []

    async def crash() -> None:
        raise ValueError("x")

    async def on_failure(failure: PermanentFailure) -> None:
        called.append(failure)

    supervisor.start("one_shot", crash, restart_on_crash=False, on_permanent_failure=on_failure)
    await idle(supervisor)
    assert called == [] and time.sleeps == []
    assert logger.named("background_task_crashed")


async def test_a_raising_failure_callback_is_logged():
    supervisor, _, logger = make()

    async def crash() -> None:
        raise ValueError("x")

    async def bad_callback(failure: PermanentFailure) -> None:
        raise RuntimeError("callback broke")

    supervisor.start("t", crash, max_restarts_per_hour=0, on_permanent_failure=bad_callback)
    await idle(supervisor)
    assert logger.named("on_permanent_failure_raised")


async def test_a_running_name_cannot_start_twice_and_handles_cancel():
    supervisor, _, _ = make()
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    handle = supervisor.start("loop", forever)
    await started.wait()
    with pytest.raises(ValueError, match="'loop' is already running"):
        supervisor.start("loop", forever)
    handle.cancel()
    handle.cancel()  # idempotent
    await idle(supervisor)


async def test_stop_cancels_everything_and_runs_finally_blocks():
    supervisor, _, _ = make()
    cleaned: list[str] = []

    def waiter(name: str):
        async def run() -> None:
            try:
                await asyncio.Event().wait()
            finally:
                cleaned.append(name)

        return run

    for name in ("a", "b", "c"):
        supervisor.start(name, waiter(name))
    assert supervisor.running == ["a", "b", "c"]
    await asyncio.sleep(0)  # let each task reach its wait
    await supervisor.stop()
    assert sorted(cleaned) == ["a", "b", "c"] and supervisor.running == []
