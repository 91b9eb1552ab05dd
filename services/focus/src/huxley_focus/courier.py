"""Notifications a live holder has not acked yet, redelivered in the background.

The actor skips a holder that missed an ack for the rest of that operation
(its lease decides its fate), but a terminal NONE must still reach it: a slow
holder (a patience hook that outlasts focus's wait) is not a dead one. Such a
NONE goes to the holder's backlog here and is sent again, in order, until the
holder acks or its lease ends. While a backlog exists, every later
notification for that holder joins it, so nothing overtakes the NONE.
Holders apply a repeated NONE once (`FocusClient` ignores a NONE for an
activity that already ended).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from huxley_runtime.logging import get_logger
from huxley_runtime.retry import IDEMPOTENT, Backoff, retrying
from huxley_wire.codec import Ok, Request
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages.focus import FocusChange, FocusState

log = get_logger(component="focus-courier")

GIVE_UP_S = 10.0  # a holder that renews but never acks is broken; stop after this
# Notifications are idempotent at the holder (a repeated NONE is applied once);
# the send's own timeout is focus's notify timeout.
NOTIFY = IDEMPOTENT.but(deadline_s=GIVE_UP_S, backoff=Backoff(first_s=0.1, max_s=1.0))

Send = Callable[[str, Request[Ok]], Awaitable[None]]  # raises WireError when not acked
Spawn = Callable[[Coroutine[Any, Any, None], str], asyncio.Task[Any]]


class Courier:
    def __init__(self, send: Send, alive: Callable[[str], bool], spawn: Spawn) -> None:
        self._send = send
        self._alive = alive
        self._spawn = spawn
        self._backlogs: dict[str, deque[Request[Ok]]] = {}
        self._deaf: set[str] = set()  # the last attempt found no subscriber at all

    def has_backlog(self, holder: str) -> bool:
        return holder in self._backlogs

    def undelivered(self, holder: str) -> list[str]:
        """Activities whose NONE this holder has not acked: a renew reply
        still lists them, so a slow holder does not synthesize a NONE of its
        own. A deaf one (nobody serves its notify subject) is left to
        synthesize it: the real one may never reach it."""
        if holder in self._deaf:
            return []
        return [
            message.activity_id
            for message in self._backlogs.get(holder, ())
            if isinstance(message, FocusChange) and message.state is FocusState.NONE
        ]

    def later(self, holder: str, message: Request[Ok]) -> None:
        """Deliver `message` after whatever this holder still has to ack."""
        if not self._alive(holder):
            log.warning("notify_dropped", holder=holder, op=message.op, reason="lease ended")
            return
        backlog = self._backlogs.get(holder)
        if backlog is not None:
            backlog.append(message)
            return
        self._backlogs[holder] = deque([message])
        self._spawn(self._deliver(holder), f"redeliver-{holder}")

    async def _deliver(self, holder: str) -> None:
        backlog = self._backlogs[holder]
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + GIVE_UP_S
        try:
            while backlog:
                message = backlog[0]
                if not await self._deliver_one(holder, message, give_up_at - loop.time()):
                    log.warning("notify_given_up", holder=holder, left=len(backlog))
                    return
                backlog.popleft()
                log.info("notify_redelivered", holder=holder, op=message.op)
        finally:
            self._backlogs.pop(holder, None)
            self._deaf.discard(holder)

    async def _deliver_one(self, holder: str, message: Request[Ok], left_s: float) -> bool:
        """One message until acked (or refused: the holder heard it); False
        once the holder's lease ended or the courier's patience ran out."""
        if left_s <= 0 or not self._alive(holder):
            return False

        def unacked(retry: int, exc: BaseException, pause_s: float) -> None:
            if isinstance(exc, WireError) and exc.code == ErrorCode.UNAVAILABLE:
                self._deaf.add(holder)
            elif isinstance(exc, WireError) and exc.code == ErrorCode.TIMEOUT:
                self._deaf.discard(holder)  # it is there, only busy (or an observer took it)

        try:
            await retrying(
                NOTIFY.but(deadline_s=left_s),
                lambda: self._send(holder, message),
                retry_if=NOTIFY.retries,
                keep_going=lambda: self._alive(holder),
                on_retry=unacked,
            )
        except WireError as exc:
            if exc.code in NOTIFY.retry_on:
                return False
            # The holder answered, with an error: it heard it; go on.
            log.warning("notify_refused", holder=holder, op=message.op, code=str(exc.code))
        return True
