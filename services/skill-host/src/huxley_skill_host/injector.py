"""`ctx.inject_turn` and `ctx.inject_turn_and_wait`, through the outbox.

Each inject is written to the outbox (outbox.py) before anything else, with
one inject_id it keeps for good. `InjectSender` then delivers the outbox to
focus in order, one at a time, retrying until focus answers, and removes an
entry once focus acknowledged it; a host that died meanwhile replays what is
left at start, so an inject a skill handed over is never lost, and the same
inject_id makes a repeat `duplicate` at focus, so it is never doubled.

`inject_turn` returns once focus acknowledged (the usual case, quick) or,
while focus is away, after `handoff_s`: the outbox has it. `inject_turn_and_wait`
waits for the acknowledgement; when focus fired the inject it then waits for
the `done` event on focus.event.inject (the model finished and the speaker
played it out); when it was queued it returns at once, as the reference does.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from huxley_runtime.logging import get_logger
from huxley_runtime.retry import FOREVER, Backoff, retrying
from huxley_sdk import InjectPriority
from huxley_skill_host.outbox import InjectOutbox, OutboxEntry
from huxley_wire.errors import WireError
from huxley_wire.messages import focus as f

log = get_logger(component="injector")

# Statuses after which no `done` will come for an inject.
_TERMINAL = frozenset({"done", "dropped", "expired", "replaced"})
# `send` retries focus's unavailability itself (FOREVER); what still escapes
# it (not focus's answer: the connection?) is tried again, until the TTL.
SEND = FOREVER.but(backoff=Backoff(first_s=0.5, max_s=5.0))
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def new_inject_id(skill: str) -> str:
    """Unique, and safe as a file name in the outbox."""
    return f"i-{_UNSAFE.sub('_', skill[:20])}-{secrets.token_hex(6)}"


def wire_priority(priority: Any) -> f.InjectPriority:
    """The SDK enum (or its value) as the wire enum."""
    return f.InjectPriority(getattr(priority, "value", priority))


class InjectWatch:
    """Waiters for InjectEvents by inject_id (fed from focus.event.inject)."""

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[str]] = {}

    def expect(self, inject_id: str) -> asyncio.Future[str]:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting[inject_id] = future
        return future

    def forget(self, inject_id: str) -> None:
        self._waiting.pop(inject_id, None)

    def seen(self, event: f.InjectEvent) -> None:
        future = self._waiting.get(event.inject_id)
        if future is not None and not future.done() and event.status in _TERMINAL:
            future.set_result(event.status)


class InjectExpired(Exception):
    """The inject's TTL ran out before focus could be reached."""


def _not_an_answer(exc: BaseException) -> bool:
    return isinstance(exc, Exception) and not isinstance(exc, (WireError, InjectExpired))


class InjectSender:
    """Delivers the outbox to focus: in order, one at a time, each until
    focus answers; an acknowledged entry leaves the outbox."""

    def __init__(
        self,
        outbox: InjectOutbox,
        send: Callable[[f.Inject], Awaitable[f.Injected]],
        *,
        ttl_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.outbox = outbox
        self.send = send
        self.ttl_s = ttl_s
        self.clock = clock
        self._queue: asyncio.Queue[OutboxEntry] = asyncio.Queue()
        self._acks: dict[str, asyncio.Future[f.Injected]] = {}
        self.pending: set[str] = set()  # recorded, not yet acknowledged (health)

    def entry(
        self,
        skill: str,
        prompt: str,
        *,
        priority: f.InjectPriority,
        dedup_key: str | None,
        wait: bool = False,
    ) -> OutboxEntry:
        return OutboxEntry(
            inject_id=new_inject_id(skill),
            prompt=prompt,
            priority=priority,
            dedup_key=dedup_key,
            skill=skill,
            wait=wait,
            created_at=self.clock(),
            ttl_s=self.ttl_s,
        )

    async def submit(self, entry: OutboxEntry) -> asyncio.Future[f.Injected]:
        """Record the entry durably, then queue it; the future is focus's answer."""
        entry.message(self.clock())  # a bad inject fails here, in the skill, not in the sender
        try:
            await asyncio.to_thread(self.outbox.record, entry)
        except OSError as exc:
            # Still deliver it, from memory: a full disk must not silence a timer.
            log.error("inject_not_recorded", skill=entry.skill, inject_id=entry.inject_id, error=str(exc))
        future: asyncio.Future[f.Injected] = asyncio.get_running_loop().create_future()
        self._acks[entry.inject_id] = future
        self.pending.add(entry.inject_id)
        self._queue.put_nowait(entry)
        return future

    async def replay(self, skills: set[str]) -> int:
        """At start: queue what a previous run of the host left for `skills`
        (other hosts' skills stay for them); drop entries past their TTL."""
        entries, bad = await asyncio.to_thread(self.outbox.load)
        for path, reason in bad:
            log.error("outbox_entry_unreadable", path=str(path), error=reason)
        now = self.clock()
        queued = 0
        for entry in entries:
            if entry.expired(now):
                log.warning("inject_expired_in_outbox", skill=entry.skill, inject_id=entry.inject_id)
                await asyncio.to_thread(self.outbox.remove, entry.inject_id)
            elif entry.skill in skills and entry.inject_id not in self.pending:
                self.pending.add(entry.inject_id)
                self._queue.put_nowait(entry)
                queued += 1
                log.info("inject_replayed", skill=entry.skill, inject_id=entry.inject_id)
        return queued

    async def run(self) -> None:
        while True:
            entry = await self._queue.get()
            await self._deliver(entry)

    async def _deliver(self, entry: OutboxEntry) -> None:
        future = self._acks.pop(entry.inject_id, None)
        outcome: f.Injected | BaseException

        async def attempt() -> f.Injected:
            if entry.expired(self.clock()):
                raise InjectExpired(entry.inject_id)
            return await self.send(entry.message(self.clock()))  # retries while focus is away

        def failed(retry: int, exc: BaseException, pause_s: float) -> None:
            log.warning("inject_send_failed", skill=entry.skill, inject_id=entry.inject_id, error=repr(exc))

        try:
            outcome = await retrying(SEND, attempt, retry_if=_not_an_answer, on_retry=failed)
        except InjectExpired as exc:
            log.warning("inject_expired_in_outbox", skill=entry.skill, inject_id=entry.inject_id)
            outcome = exc
        except WireError as exc:  # focus refused it: sending it again won't help
            log.error(
                "inject_refused",
                skill=entry.skill,
                inject_id=entry.inject_id,
                code=str(exc.code),
                error=exc.message,
            )
            outcome = exc
        await asyncio.to_thread(self.outbox.remove, entry.inject_id)
        self.pending.discard(entry.inject_id)
        if isinstance(outcome, f.Injected):
            log.info(
                "inject_sent",
                skill=entry.skill,
                inject_id=entry.inject_id,
                priority=entry.priority.value,
                status=outcome.status,
                wait=entry.wait,
            )
        if future is not None and not future.done():
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)


class Injector:
    """The two inject callables of one skill."""

    def __init__(
        self,
        skill: str,
        sender: InjectSender,
        watch: InjectWatch,
        *,
        wait_timeout_s: float,
        handoff_s: float,
    ) -> None:
        self.skill = skill
        self.sender = sender
        self.watch = watch
        self.wait_timeout_s = wait_timeout_s
        self.handoff_s = handoff_s

    async def inject_turn(
        self,
        prompt: str,
        /,
        *,
        dedup_key: str | None = None,
        priority: InjectPriority = InjectPriority.NORMAL,
    ) -> None:
        entry = self.sender.entry(self.skill, prompt, priority=wire_priority(priority), dedup_key=dedup_key)
        acked = await self.sender.submit(entry)
        done, _ = await asyncio.wait({acked}, timeout=self.handoff_s)
        if not done:
            log.info("inject_pending", skill=self.skill, inject_id=entry.inject_id, after_s=self.handoff_s)
            acked.add_done_callback(_consume)
            return
        acked.result()  # focus's refusal reaches the skill, as it did without the outbox

    async def inject_turn_and_wait(self, prompt: str, /, *, dedup_key: str | None = None) -> None:
        entry = self.sender.entry(
            self.skill, prompt, priority=f.InjectPriority.NORMAL, dedup_key=dedup_key, wait=True
        )
        finished = self.watch.expect(entry.inject_id)  # before sending: `done` may come fast
        try:
            reply = await (await self.sender.submit(entry))
            if not reply.will_notify_done:
                return
            try:
                async with asyncio.timeout(self.wait_timeout_s):
                    status = await finished
            except TimeoutError:
                log.warning(
                    "inject_wait_timed_out",
                    skill=self.skill,
                    inject_id=entry.inject_id,
                    after_s=self.wait_timeout_s,
                )
                return
            log.info("inject_finished", skill=self.skill, inject_id=entry.inject_id, status=status)
        finally:
            self.watch.forget(entry.inject_id)


def _consume(future: asyncio.Future[f.Injected]) -> None:
    """Nobody awaits a handed-over inject any more: read its outcome so a
    refusal is not reported as a never-retrieved exception (the sender
    logged it)."""
    if not future.cancelled():
        future.exception()
