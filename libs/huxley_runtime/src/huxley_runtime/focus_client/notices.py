"""The holder's side of `focus.notify.<holder>`: the handler protocol and the
one queue that hands notifications to it, one at a time, in arrival order."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

from huxley_runtime.logging import get_logger
from huxley_wire.codec import RequestTable
from huxley_wire.messages.focus import EffectDropped, FocusChange, PatienceExpired

log = get_logger(component="focus-client")

NOTIFICATIONS = RequestTable([FocusChange, PatienceExpired, EffectDropped])

Notification = FocusChange | PatienceExpired | EffectDropped


class FocusHandler(Protocol):
    """What a holder does with what focus tells it. Calls come one at a time,
    in the order focus sent them; an exception is logged and the next call
    still comes."""

    async def on_focus(self, change: FocusChange) -> None:
        """An activity's new state: FOREGROUND (play at `gain`), BACKGROUND
        (`may_duck`: keep playing at `gain`; `must_pause`: pause), NONE (stop
        for good; `reason` says why)."""

    async def on_patience_expired(self, activity_id: str) -> None:
        """The activity's patience ran out; run its hook. Its NONE follows.
        Schedule follow-up work (an inject) instead of awaiting it here."""

    async def on_effect_dropped(self, effect_id: str, reason: str) -> None:
        """A pending stream or claim of this holder will never start."""


class Inbox:
    """Notifications on their way to the handler. `put` with a future to
    learn when the handler is done with that one (the patience hook's ack)."""

    def __init__(self, handler: FocusHandler, holder: str) -> None:
        self.handler = handler
        self.holder = holder
        self._queue: asyncio.Queue[tuple[Notification, asyncio.Future[None] | None]] = asyncio.Queue()

    def put(self, note: Notification, done: asyncio.Future[None] | None = None) -> None:
        self._queue.put_nowait((note, done))

    async def drain(self, timeout_s: float) -> None:
        """Wait (a while) until the handler heard everything queued so far."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout_s)

    async def run(self) -> None:
        while True:
            note, done = await self._queue.get()
            try:
                await self._deliver(note)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("focus_handler_failed", holder=self.holder, kind=note.op)
            finally:
                if done is not None and not done.done():
                    done.set_result(None)
                self._queue.task_done()

    async def _deliver(self, note: Notification) -> None:
        if isinstance(note, FocusChange):
            await self.handler.on_focus(note)
        elif isinstance(note, EffectDropped):
            await self.handler.on_effect_dropped(note.effect_id, note.reason)
        else:
            await self.handler.on_patience_expired(note.activity_id)
