"""The one retry policy of the house: what is tried again, how soon, for how
long, and how long one attempt may wait (docs/reliability.md, "Retries").

No policy depends on NATS no-responders. A request to a subject nobody serves
fails at once only while *nobody* subscribes to it: an observer on `huxley.>`
(`huxley tap`, `nats sub`) receives it, never answers, and the requester
waits its whole timeout. So:

- an idempotent request (IDEMPOTENT, FOREVER) takes a timeout like
  `unavailable`, waits briefly per attempt, and paces its attempts from each
  attempt's *start*: a dead service is retried at the same pace, and a
  service that comes back is reached within the same bound
  (`recovery_bound_s`), with or without an observer;
- a request that must not run twice (ONCE) is retried only on `unavailable`
  (nobody received it); a timeout may hide a success, so it is final.

tenacity runs the loops (attempt, classify, pause, stop, re-raise); the
schedules here are pure data and arithmetic. See docs/decisions.md.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from huxley_wire.errors import ErrorCode, WireError

RETRYABLE = frozenset({ErrorCode.UNAVAILABLE, ErrorCode.TIMEOUT})
ANY_ERROR = frozenset(ErrorCode)


class Keep(enum.Enum):
    """`RetryPolicy.but(deadline_s=...)` left out (None means "no deadline")."""

    KEEP = 0


@dataclass(frozen=True)
class Backoff:
    """Exponential pauses: first_s, first_s*factor, ... capped at max_s."""

    first_s: float
    max_s: float
    factor: float = 2.0

    def step(self, retry: int) -> float:
        """The pause before retry number `retry` (1 = the first retry)."""
        return float(min(self.first_s * self.factor ** max(retry - 1, 0), self.max_s))


class Schedule(Protocol):
    def pause_s(self, retry: int, took_s: float, elapsed_s: float) -> float | None:
        """The pause before retry number `retry`, given how long the failed
        attempt took and how long since the first began; None: stop."""
        ...


@dataclass(frozen=True)
class RetryPolicy:
    """A named retry policy for requests (see the module docstring)."""

    name: str
    retry_on: frozenset[ErrorCode]
    attempt_timeout_s: float
    deadline_s: float | None  # None: until it succeeds (or the caller stops wanting it)
    backoff: Backoff

    def retries(self, exc: BaseException) -> bool:
        return isinstance(exc, WireError) and exc.code in self.retry_on

    def pause_s(self, retry: int, took_s: float, elapsed_s: float) -> float | None:
        if self.deadline_s is not None and elapsed_s >= self.deadline_s:
            return None
        # Counted from the attempt's start: a timed-out attempt (an observer
        # took the request) has already waited part of its pause.
        return max(0.0, self.backoff.step(retry) - took_s)

    @property
    def recovery_bound_s(self) -> float:
        """The longest gap between two attempts' starts: once the peer is
        back, the caller reaches it within this (plus its answer time)."""
        return max(self.backoff.max_s, self.attempt_timeout_s)

    def but(
        self,
        *,
        retry_on: frozenset[ErrorCode] | None = None,
        attempt_timeout_s: float | None = None,
        deadline_s: float | Keep | None = Keep.KEEP,
        backoff: Backoff | None = None,
    ) -> RetryPolicy:
        """This policy with a caller's override (a slower peer, a shorter deadline)."""
        return _but(self, retry_on, attempt_timeout_s, deadline_s, backoff)


@functools.lru_cache(maxsize=256)
def _but(
    policy: RetryPolicy,
    retry_on: frozenset[ErrorCode] | None,
    attempt_timeout_s: float | None,
    deadline_s: float | Keep | None,
    backoff: Backoff | None,
) -> RetryPolicy:
    # Cached: callers ask for the same few overrides on every request, and
    # `dataclasses.replace` costs several microseconds each time.
    changes: dict[str, Any] = {}
    if retry_on is not None:
        changes["retry_on"] = retry_on
    if attempt_timeout_s is not None:
        changes["attempt_timeout_s"] = attempt_timeout_s
    if backoff is not None:
        changes["backoff"] = backoff
    if not isinstance(deadline_s, Keep):
        changes["deadline_s"] = deadline_s
    return dataclasses.replace(policy, **changes) if changes else policy


REQUEST_BACKOFF = Backoff(first_s=0.1, max_s=2.0)

# Reads, settings, barriers, anything keyed so that a repeat changes nothing.
IDEMPOTENT = RetryPolicy(
    "idempotent", RETRYABLE, attempt_timeout_s=1.0, deadline_s=30.0, backoff=REQUEST_BACKOFF
)
# Idempotent and must not be lost (an accepted inject, a run_inject while it is current).
FOREVER = dataclasses.replace(IDEMPOTENT, name="forever", deadline_s=None)
# Must not run twice (an append without its own id): only what nobody received.
ONCE = RetryPolicy(
    "once",
    frozenset({ErrorCode.UNAVAILABLE}),
    attempt_timeout_s=2.0,  # a timeout is final here, so give the peer its time
    deadline_s=30.0,
    backoff=REQUEST_BACKOFF,
)
# The first connection to NATS (a service may start before the server).
CONNECT = RetryPolicy("connect", ANY_ERROR, attempt_timeout_s=2.0, deadline_s=None, backoff=Backoff(0.2, 5.0))


OnRetry = Callable[[int, BaseException, float], Awaitable[None] | None]


async def retrying[T](
    schedule: Schedule,
    attempt: Callable[[], Awaitable[T]],
    *,
    retry_if: Callable[[BaseException], bool],
    keep_going: Callable[[], bool] | None = None,
    on_retry: OnRetry | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> T:
    """Run `attempt` until it succeeds, raises what `retry_if` refuses, the
    schedule says stop, or `keep_going()` turns false: then its last error is
    raised. `on_retry(retry, error, pause_s)` hears each retry before its pause."""
    clock = time.monotonic
    # The first attempt runs here, outside tenacity: most succeed, and a
    # tenacity engine costs tens of microseconds per call (more than a
    # request/reply on the bus). A first failure that is retried is replayed
    # into the engine as its attempt 1, so everything after it is the same.
    first_began = clock()  # the first attempt's start (the deadline counts from it)
    began = first_began  # the latest attempt's start (its pause counts from it)
    try:
        return await attempt()
    except BaseException as exc:
        if not retry_if(exc):
            raise
        replay: BaseException | None = exc
    pause: float | None = None  # the schedule's answer for the coming retry
    last: BaseException | None = None

    async def timed() -> T:
        nonlocal began, replay
        if replay is not None:
            failed, replay = replay, None
            raise failed
        if last is not None and keep_going is not None and not keep_going():
            raise last  # stopped being wanted during the pause
        began = clock()
        return await attempt()

    def wait(state: RetryCallState) -> float:
        nonlocal pause
        now = clock()
        pause = schedule.pause_s(state.attempt_number, now - began, now - first_began)
        return pause or 0.0

    def stop(state: RetryCallState) -> bool:
        return pause is None or (keep_going is not None and not keep_going())

    async def before_sleep(state: RetryCallState) -> None:
        nonlocal last
        last = state.outcome.exception() if state.outcome is not None else None
        if last is None or on_retry is None:
            return
        heard = on_retry(state.attempt_number, last, state.upcoming_sleep)
        if inspect.isawaitable(heard):
            await heard

    engine = AsyncRetrying(
        retry=retry_if_exception(retry_if),
        wait=wait,
        stop=stop,
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    return await engine(timed)


async def with_policy[T](
    policy: RetryPolicy,
    attempt: Callable[[float], Awaitable[T]],
    *,
    keep_going: Callable[[], bool] | None = None,
    on_retry: OnRetry | None = None,
) -> T:
    """A request under `policy`: `attempt(timeout_s)` makes one attempt."""
    return await retrying(
        policy,
        lambda: attempt(policy.attempt_timeout_s),
        retry_if=policy.retries,
        keep_going=keep_going,
        on_retry=on_retry,
    )
