"""Telling a stuck service from a live one, for `huxley up`.

A process can be alive and useless (SIGSTOPped, a blocked event loop, a
deadlock): only an answer on its health subject says it works. The supervisor
asks each child's own instance every `interval_s` (10 s) while it answers,
and every `retry_s` (2 s) after an ask went unanswered, so the idle bus stays
quiet and a stuck child is still found within about `interval_s` plus
`failures - 1` retries (FOCUS-14); after `failures` unanswered asks in a row,
outside a grace period after each start (and after the bus comes back), it
kills the child so the usual restart takes over.

An answer of any status counts as alive: `degraded` usually means a peer or
dependency is down, which a restart of this service would not fix.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg

from huxley_wire.codec import decode, encode
from huxley_wire.errors import WireError
from huxley_wire.messages.common import Health, HealthRequest

ENV_PREFIX = "HUXLEY_WATCHDOG_"


@dataclass(frozen=True)
class WatchdogConfig:
    interval_s: float = 10.0  # between asks while the child answers
    retry_s: float = 2.0  # after an unanswered ask
    failures: int = 3
    grace_s: float = 20.0  # after a start, or the bus coming back, before asks count
    timeout_s: float = 1.5  # for one answer

    @property
    def pace_s(self) -> float:
        """How often the supervisor looks at whether an ask is due."""
        return min(self.interval_s, self.retry_s)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> WatchdogConfig:
        """HUXLEY_WATCHDOG_INTERVAL_S, _RETRY_S, _FAILURES, _GRACE_S, _TIMEOUT_S
        override the defaults."""
        env = os.environ if environ is None else environ
        default = cls()

        def number(name: str, value: float) -> float:
            raw = env.get(f"{ENV_PREFIX}{name}")
            return float(raw) if raw else value

        return cls(
            interval_s=number("INTERVAL_S", default.interval_s),
            retry_s=number("RETRY_S", default.retry_s),
            failures=max(1, int(number("FAILURES", default.failures))),
            grace_s=number("GRACE_S", default.grace_s),
            timeout_s=number("TIMEOUT_S", default.timeout_s),
        )


@dataclass
class Liveness:
    """Pure bookkeeping for one child: when asks count, and when to kill."""

    config: WatchdogConfig
    quiet_until: float = 0.0
    misses: int = 0
    asked_at: float | None = None

    def grace(self, now: float) -> None:
        """A (re)start or the bus back: give it time before asks count."""
        self.quiet_until = now + self.config.grace_s
        self.misses = 0

    def counting(self, now: float) -> bool:
        return now >= self.quiet_until

    def due(self, now: float) -> bool:
        """Time to ask: `retry_s` after a miss, `interval_s` after an answer."""
        if self.asked_at is None:
            return True
        wait = self.config.retry_s if self.misses else self.config.interval_s
        return now - self.asked_at >= min(wait, self.config.interval_s) - 1e-3

    def asked(self, now: float) -> None:
        self.asked_at = now

    def record(self, answered: bool) -> bool:
        """True when this miss is the one that should kill the child."""
        if answered:
            self.misses = 0
            return False
        self.misses += 1
        if self.misses >= self.config.failures:
            self.misses = 0
            return True
        return False


async def probe_health(nc: Client, subject: str, instance: str, timeout_s: float) -> bool | None:
    """Whether `instance` answered its health subject in time; None when the
    bus itself failed us (that is no fault of the service)."""
    loop = asyncio.get_running_loop()
    answered: asyncio.Future[bool] = loop.create_future()

    async def on_reply(msg: Msg) -> None:
        try:
            health = decode(msg.data, Health)
        except WireError:
            return
        if health.instance == instance and not answered.done():
            answered.set_result(True)

    try:
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox, cb=on_reply)
    except (nats.errors.Error, OSError):
        return None
    try:
        await nc.publish(subject, encode(HealthRequest()), reply=inbox)
        return await asyncio.wait_for(answered, timeout_s)
    except TimeoutError:
        return False if nc.is_connected else None
    except (nats.errors.Error, OSError):
        return None
    finally:
        try:
            await sub.unsubscribe()
        except (nats.errors.Error, OSError):
            pass
