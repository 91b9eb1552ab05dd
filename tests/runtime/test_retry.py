"""The one retry policy (huxley_runtime.retry): its arithmetic, and on a real
nats-server that an observer on `huxley.>` changes nothing (issue 13: with
`huxley tap` running, a request to a dead service stopped failing fast with
no-responders and waited out its whole timeout)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from huxley_runtime.bus import settle
from huxley_runtime.retry import FOREVER, IDEMPOTENT, ONCE, Backoff, retrying
from huxley_runtime.rpc import request_with_retry
from huxley_wire.codec import encode
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages.common import Health, HealthRequest
from huxley_wire.subjects import Subjects
from support.waiting import until

# -- the arithmetic (pure) ----------------------------------------------------------------------


def test_backoff_doubles_up_to_its_cap() -> None:
    steps = [IDEMPOTENT.backoff.step(n) for n in range(1, 8)]
    assert steps == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0])
    assert Backoff(first_s=1.0, max_s=30.0, factor=3.0).step(3) == 9.0


def test_a_pause_counts_from_the_start_of_the_failed_attempt() -> None:
    # No-responders fails at once: the whole pause. A timed-out attempt (an
    # observer took the request) already waited: only what is left of it.
    assert IDEMPOTENT.pause_s(6, took_s=0.0, elapsed_s=5.0) == pytest.approx(2.0)
    assert IDEMPOTENT.pause_s(6, took_s=IDEMPOTENT.attempt_timeout_s, elapsed_s=5.0) == pytest.approx(1.0)
    assert IDEMPOTENT.pause_s(2, took_s=IDEMPOTENT.attempt_timeout_s, elapsed_s=5.0) == 0.0


def test_the_recovery_bound_is_the_same_with_or_without_an_observer() -> None:
    # Between two attempts' starts: the pause without an observer, the attempt
    # timeout with one; an idempotent attempt never waits longer than a pause.
    for policy in (IDEMPOTENT, FOREVER):
        assert policy.attempt_timeout_s <= policy.backoff.max_s
        assert policy.recovery_bound_s == policy.backoff.max_s


def test_deadlines_and_what_each_policy_retries() -> None:
    assert IDEMPOTENT.pause_s(3, 0.0, elapsed_s=30.0) is None
    assert FOREVER.pause_s(3, 0.0, elapsed_s=1e9) is not None
    timeout = WireError(ErrorCode.TIMEOUT, "no reply")
    unavailable = WireError(ErrorCode.UNAVAILABLE, "nobody")
    assert IDEMPOTENT.retries(timeout) and IDEMPOTENT.retries(unavailable)
    # Must not run twice: a timeout may hide a success.
    assert ONCE.retries(unavailable) and not ONCE.retries(timeout)
    assert not IDEMPOTENT.retries(WireError(ErrorCode.INVALID, "bad"))
    assert not IDEMPOTENT.retries(RuntimeError("not the peer's answer"))
    assert IDEMPOTENT.but(deadline_s=None).deadline_s is None
    assert IDEMPOTENT.but(attempt_timeout_s=3.0).deadline_s == IDEMPOTENT.deadline_s


async def test_the_runner_stops_when_the_caller_no_longer_wants_it() -> None:
    calls: list[int] = []
    wanted = True

    async def attempt() -> str:
        nonlocal wanted
        calls.append(1)
        if len(calls) == 3:
            wanted = False
        raise WireError(ErrorCode.TIMEOUT, "no reply")

    async def no_wait(_: float) -> None:
        return None

    with pytest.raises(WireError) as raised:
        await retrying(FOREVER, attempt, retry_if=FOREVER.retries, keep_going=lambda: wanted, sleep=no_wait)
    assert raised.value.code == ErrorCode.TIMEOUT and len(calls) == 3


async def test_retries_after_a_failed_first_attempt_count_and_pause_from_it() -> None:
    """The first attempt runs outside tenacity; a retryable failure of it is
    retry 1 all the same, with the pause the schedule gives retry 1."""
    failures = [WireError(ErrorCode.UNAVAILABLE, "nobody"), WireError(ErrorCode.TIMEOUT, "late")]
    calls: list[int] = []
    heard: list[tuple[int, ErrorCode, float]] = []
    slept: list[float] = []

    async def attempt() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return "ok"

    def on_retry(retry: int, exc: BaseException, pause_s: float) -> None:
        assert isinstance(exc, WireError)
        heard.append((retry, exc.code, pause_s))

    async def sleep(pause_s: float) -> None:
        slept.append(pause_s)

    result = await retrying(IDEMPOTENT, attempt, retry_if=IDEMPOTENT.retries, on_retry=on_retry, sleep=sleep)
    assert result == "ok" and len(calls) == 3
    assert [(n, code) for n, code, _ in heard] == [(1, ErrorCode.UNAVAILABLE), (2, ErrorCode.TIMEOUT)]
    assert slept == [pause for *_, pause in heard]
    assert slept[0] == pytest.approx(0.1, abs=0.05) and slept[1] == pytest.approx(0.2, abs=0.05)


async def test_a_first_failure_not_worth_retrying_is_raised_as_it_is() -> None:
    refused = WireError(ErrorCode.INVALID, "bad")
    heard: list[int] = []

    async def attempt() -> str:
        raise refused

    with pytest.raises(WireError) as raised:
        await retrying(
            IDEMPOTENT, attempt, retry_if=IDEMPOTENT.retries, on_retry=lambda n, e, p: heard.append(n)
        )
    assert raised.value is refused and heard == []


async def test_the_first_attempt_outside_the_engine_keeps_every_retry_the_same() -> None:
    """The first attempt runs without tenacity; its failure is replayed into
    the engine as retry 1, so the retries, their numbers and their pauses are
    what they were, and an error that is not retried comes out as it was."""
    heard: list[tuple[int, str, float]] = []
    pauses: list[float] = []
    calls = 0

    async def attempt() -> str:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise WireError(ErrorCode.UNAVAILABLE, f"down {calls}")
        return "ok"

    async def no_wait(pause_s: float) -> None:
        pauses.append(pause_s)

    def on_retry(retry: int, exc: BaseException, pause_s: float) -> None:
        heard.append((retry, str(exc), pause_s))

    schedule = IDEMPOTENT.but(backoff=Backoff(first_s=10.0, max_s=10.0))
    got = await retrying(schedule, attempt, retry_if=schedule.retries, on_retry=on_retry, sleep=no_wait)
    assert got == "ok" and calls == 3
    expected = [(1, "unavailable: down 1"), (2, "unavailable: down 2")]
    assert [(retry, text) for retry, text, _ in heard] == expected
    assert all(9.0 < pause <= 10.0 for pause in pauses) and len(pauses) == 2

    async def refused() -> str:
        raise WireError(ErrorCode.INVALID, "bad")

    with pytest.raises(WireError) as raised:
        await retrying(schedule, refused, retry_if=schedule.retries, on_retry=on_retry, sleep=no_wait)
    assert raised.value.code == ErrorCode.INVALID and len(heard) == 2

    async def gone() -> str:
        raise WireError(ErrorCode.TIMEOUT, "past the deadline")

    over = IDEMPOTENT.but(deadline_s=0.0)  # the schedule stops at once: the first failure is final
    with pytest.raises(WireError) as raised:
        await retrying(over, gone, retry_if=over.retries, on_retry=on_retry, sleep=no_wait)
    assert raised.value.message == "past the deadline" and len(heard) == 2


# -- on the bus ---------------------------------------------------------------------------------------


@dataclass
class Revival:
    codes: list[str] = field(default_factory=list)  # each failed attempt's code
    attempts_before_revival: int = 0
    reply: Health | None = None

    @property
    def attempts_after_revival(self) -> int:
        return len(self.codes) + 1 - self.attempts_before_revival


async def revive(nc: Client, subjects: Subjects, service: str, *, observed: bool) -> Revival:
    """A health request to a service that is down, retried under IDEMPOTENT;
    the service comes up after three failed attempts."""
    seen = Revival()
    observer = None
    if observed:  # what `huxley tap` does: every subject of the site, never answering

        async def ignore(msg: Msg) -> None:
            return None

        observer = await nc.subscribe(subjects.everything, cb=ignore)
        await settle(nc)

    def failed(retry: int, exc: BaseException, pause_s: float) -> None:
        assert isinstance(exc, WireError)
        seen.codes.append(str(exc.code))

    subject = subjects.health(service)
    asking = asyncio.create_task(request_with_retry(nc, subject, HealthRequest(), on_retry=failed))
    responder = None
    try:
        # A failure bound from the policy: with a long per-attempt timeout
        # (the defect) three attempts could not fail this soon.
        bound = 3 * IDEMPOTENT.recovery_bound_s + 2.0
        await until(lambda: len(seen.codes) >= 3, bound, "three failed attempts")

        async def answer(msg: Msg) -> None:
            await msg.respond(encode(Health(service=service, instance="i-1", site=subjects.site)))

        responder = await nc.subscribe(subject, cb=answer)
        await settle(nc)
        seen.attempts_before_revival = len(seen.codes)
        async with asyncio.timeout(bound):
            seen.reply = await asking
    finally:
        asking.cancel()
        for sub in (responder, observer):
            if sub is not None:
                await sub.unsubscribe()
    return seen


async def test_an_observer_on_the_subject_changes_nothing(nc: Client, site: str) -> None:
    subjects = Subjects(site)
    plain = await revive(nc, subjects, "ghost-a", observed=False)
    observed = await revive(nc, subjects, "ghost-b", observed=True)
    # Without an observer the dead service is no-responders; with one every
    # attempt times out instead, and is retried all the same.
    assert set(plain.codes) == {ErrorCode.UNAVAILABLE}
    assert set(observed.codes) == {ErrorCode.TIMEOUT}
    for run in (plain, observed):
        assert run.reply is not None and run.reply.status == "ok"
        # Reached with the attempt in flight when it came back, or the next.
        assert 1 <= run.attempts_after_revival <= 2


async def test_once_never_repeats_a_request_that_timed_out(nc: Client, site: str) -> None:
    """A request that must not run twice: an observer turns the dead peer into
    a timeout, which may hide a success, so it is reported, not retried."""
    subjects = Subjects(site)
    received: list[bytes] = []

    async def take(msg: Msg) -> None:
        received.append(msg.data)

    observer = await nc.subscribe(subjects.everything, cb=take)
    await settle(nc)
    try:
        with pytest.raises(WireError) as raised:
            await request_with_retry(
                nc, subjects.health("ghost-c"), HealthRequest(), policy=ONCE, timeout=0.3
            )
        assert raised.value.code == ErrorCode.TIMEOUT
        assert len(received) == 1
    finally:
        await observer.unsubscribe()
