"""The scripted household: what a family does with the assistant while the
faults happen, and the record of what the stack acknowledged.

Every action draws its timing from the run's seeded RNG. An action counts
as acknowledged only when its reply said so: a storage `set` answered ok, a
timer or reminder tool answered without an error, an inject answered
`fired` or `queued`. Those are the promises the verdict checks.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.errors import Error as NatsError

from bench.chaos.stack import BOOK_ID, PERSONA, ChaosStack
from bench.chaos.web_client import WebClient
from huxley_runtime.rpc import request
from huxley_wire.errors import WireError
from huxley_wire.messages.focus import Inject, InjectPriority
from huxley_wire.messages.skills import ToolCall
from huxley_wire.messages.storage import KvSet

STORM_SIZE = 5
FAILURES = (WireError, OSError, TimeoutError, NatsError)


@dataclass
class Spoken:
    """Something the household expects to hear exactly once: its token is
    in the prompt, so the model's responses tell how often it was said."""

    kind: str  # timer | reminder | storm
    token: str
    due: float  # time.monotonic() when it should be said at the latest (roughly)
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Ledger:
    writes: dict[str, str] = field(default_factory=dict)  # acknowledged key -> value
    writes_tried: int = 0
    expected: list[Spoken] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)  # tried, not acknowledged
    presses: list[tuple[float, str, bool]] = field(default_factory=list)
    book_progress: list[dict[str, Any]] = field(default_factory=list)


class Household:
    def __init__(self, stack: ChaosStack, web: WebClient, rng: random.Random) -> None:
        self.stack = stack
        self.web = web
        self.rng = rng
        self.ledger = Ledger()
        self._count = 0

    def _next(self) -> int:
        self._count += 1
        return self._count

    # -- the routines ------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        routines = [
            self.writer(stop),
            self.timers(stop),
            self.reminders(stop),
            self.storms(stop),
            self.talk(stop),
        ]
        await asyncio.gather(*routines)

    async def _pause(self, stop: asyncio.Event, low: float, high: float) -> bool:
        """Wait a random while; False once the run is over."""
        try:
            await asyncio.wait_for(stop.wait(), self.rng.uniform(low, high))
        except TimeoutError:
            return True
        return False

    async def writer(self, stop: asyncio.Event) -> None:
        subject = self.stack.subjects.storage_kv(PERSONA, "chaos")
        while await self._pause(stop, 0.05, 0.3):
            n = self._next()
            key, value = f"w{n:06d}", f"value-{n}-{self.rng.getrandbits(32):08x}"
            self.ledger.writes_tried += 1
            try:
                await request(self.stack.nc, subject, KvSet(key=key, value=value), timeout=2.0)
            except FAILURES:
                continue
            self.ledger.writes[key] = value

    async def _tool(self, skill: str, tool: str, args: dict[str, Any]) -> dict[str, Any] | None:
        call = ToolCall(call_id=f"chaos-{self._next()}", tool=tool, args=args)
        try:
            reply = await request(self.stack.nc, self.stack.subjects.skill_tool(skill), call, timeout=5.0)
        except FAILURES as exc:
            self.ledger.refused.append({"skill": skill, "tool": tool, "args": args, "error": str(exc)})
            return None
        try:
            output: dict[str, Any] = json.loads(reply.output)
        except ValueError:
            output = {"raw": reply.output}
        if "error" in output:
            self.ledger.refused.append({"skill": skill, "tool": tool, "args": args, "error": output["error"]})
            return None
        return output

    async def timers(self, stop: asyncio.Event) -> None:
        while await self._pause(stop, 4, 9):
            token = f"timer{self._next():04d}"
            seconds = self.rng.randint(2, 12)
            if await self._tool("timers", "set_timer", {"seconds": seconds, "message": token}) is not None:
                self.ledger.expected.append(Spoken("timer", token, time.monotonic() + seconds))

    async def reminders(self, stop: asyncio.Event) -> None:
        while await self._pause(stop, 8, 16):
            token = f"reminder{self._next():04d}"
            seconds = self.rng.randint(5, 15)
            when = (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat(timespec="seconds")
            args = {"message": token, "when_iso": when}
            if await self._tool("reminders", "add_reminder", args) is not None:
                self.ledger.expected.append(Spoken("reminder", token, time.monotonic() + seconds))

    async def storms(self, stop: asyncio.Event) -> None:
        """Bursts of injects sharing a dedup key (a skill retrying, say): one
        of each burst is said, once; a repeated inject id is a duplicate."""
        while await self._pause(stop, 6, 14):
            n = self._next()
            token, statuses = f"storm{n:04d}", []
            ids = [f"storm-{n}-{i}" for i in range(STORM_SIZE)] + [f"storm-{n}-0"]
            for inject_id in ids:
                message = Inject(
                    inject_id=inject_id,
                    prompt=f"Tell the user: {token}",
                    priority=InjectPriority.NORMAL,
                    dedup_key=f"storm-{n}",
                )
                try:
                    reply = await request(
                        self.stack.nc, self.stack.subjects.focus_rpc_of("bridge"), message, timeout=2.0
                    )
                    statuses.append(reply.status)
                except FAILURES as exc:
                    statuses.append(f"error: {exc.__class__.__name__}")
            if any(s in ("fired", "queued") for s in statuses):
                self.ledger.expected.append(Spoken("storm", token, time.monotonic(), {"statuses": statuses}))
            else:
                self.ledger.refused.append({"storm": token, "statuses": statuses})

    async def press(self, key: str) -> bool:
        ok = await self.web.press(key)
        self.ledger.presses.append((time.monotonic(), key, ok))
        return ok

    async def talk(self, stop: asyncio.Event) -> None:
        """The book first, hellos now and then, and one intercom call that a
        later press ends."""
        await self.press("3")
        rounds = 0
        while await self._pause(stop, 8, 16):
            rounds += 1
            key = "6" if rounds == 2 else "0"
            await self.press(key)

    async def book_progress(self) -> dict[str, Any] | None:
        output = await self._tool("audiobooks", "get_progress", {"book_id": BOOK_ID})
        if output is not None:
            self.ledger.book_progress.append(output)
        return output
