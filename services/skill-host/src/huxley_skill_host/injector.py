"""`ctx.inject_turn` and `ctx.inject_turn_and_wait`: requests to focus.

Each call picks one inject_id and keeps it on every retry, so an inject
focus acknowledged is never lost (we retry until it answers) and never
doubled (a retry of an accepted id is `duplicate`). `inject_turn_and_wait`
listens to focus.event.inject: when focus fired the inject it waits for the
`done` event (the model finished and the speaker played it out); when it was
queued it returns at once, as the reference does.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from huxley_runtime.logging import get_logger
from huxley_sdk import InjectPriority
from huxley_wire.messages import focus as f

log = get_logger(component="injector")

# Statuses after which no `done` will come for an inject.
_TERMINAL = frozenset({"done", "dropped", "expired", "replaced"})


def new_inject_id(skill: str) -> str:
    return f"i-{skill[:20]}-{secrets.token_hex(6)}"


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


class Injector:
    """The two inject callables of one skill."""

    def __init__(
        self,
        skill: str,
        send: Callable[[f.Inject], Awaitable[f.Injected]],
        watch: InjectWatch,
        *,
        wait_timeout_s: float,
    ) -> None:
        self.skill = skill
        self.send = send
        self.watch = watch
        self.wait_timeout_s = wait_timeout_s

    async def inject_turn(
        self,
        prompt: str,
        /,
        *,
        dedup_key: str | None = None,
        priority: InjectPriority = InjectPriority.NORMAL,
    ) -> None:
        message = f.Inject(
            inject_id=new_inject_id(self.skill),
            prompt=prompt,
            priority=wire_priority(priority),
            dedup_key=dedup_key,
            skill=self.skill,
        )
        reply = await self.send(message)
        log.info(
            "inject_sent",
            skill=self.skill,
            inject_id=message.inject_id,
            priority=message.priority.value,
            status=reply.status,
        )

    async def inject_turn_and_wait(self, prompt: str, /, *, dedup_key: str | None = None) -> None:
        message = f.Inject(
            inject_id=new_inject_id(self.skill),
            prompt=prompt,
            priority=f.InjectPriority.NORMAL,
            dedup_key=dedup_key,
            wait=True,
            skill=self.skill,
        )
        finished = self.watch.expect(message.inject_id)  # before sending: `done` may come fast
        try:
            reply = await self.send(message)
            log.info(
                "inject_sent", skill=self.skill, inject_id=message.inject_id, status=reply.status, wait=True
            )
            if not reply.will_notify_done:
                return
            try:
                async with asyncio.timeout(self.wait_timeout_s):
                    status = await finished
            except TimeoutError:
                log.warning(
                    "inject_wait_timed_out",
                    skill=self.skill,
                    inject_id=message.inject_id,
                    after_s=self.wait_timeout_s,
                )
                return
            log.info("inject_finished", skill=self.skill, inject_id=message.inject_id, status=status)
        finally:
            self.watch.forget(message.inject_id)
