"""Subscriptions handled inline, where nats-py's reader parses the message.

nats-py hands each message of a subscription with a callback to a `Msg`
object, the subscription's queue and its task, and awaits a coroutine per
message. At audio-io's output intake (50 frames/s per stream, 25,000/s at
500 streams) that was about half of the service's CPU. `subscribe_inline`
takes a synchronous handler of (subject, payload) and calls it from the
reader with the raw bytes: no `Msg`, no queue, no task hop.

It hooks the client's `_process_msg` (nats-py 2.x, pinned in uv.lock; tests
run through the hook). If that hook is not available the subscription
still works through nats-py's ordinary callback, only slower.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from huxley_runtime.logging import get_logger

Handler = Callable[[str, bytes], None]  # (subject, payload); must not block
ProcessMsg = Callable[[int, bytes, bytes, bytes, Any], Awaitable[None]]

log = get_logger(component="bus")


class _Hook:
    """Installed once per client, in front of its `_process_msg`."""

    def __init__(self, nc: Client, original: ProcessMsg, yield_every: int) -> None:
        self.subs: dict[int, Subscription] = nc._subs
        self.stats: dict[str, int] = nc.stats
        self.original = original
        self.handlers: dict[Callable[[Msg], Awaitable[None]], Handler] = {}  # by the sub's callback
        self.yield_every = yield_every
        self.count = 0
        self.failures = 0

    async def __call__(self, sid: int, subject: bytes, reply: bytes, data: bytes, headers: Any) -> None:
        sub = self.subs.get(sid)
        handler = self.handlers.get(sub._cb) if sub is not None and sub._cb is not None else None
        if handler is None or headers:
            await self.original(sid, subject, reply, data, headers)
            return
        self.stats["in_msgs"] += 1
        self.stats["in_bytes"] += len(data)
        try:
            handler(subject.decode(), data)
        except Exception:  # a handler's bug must not stop the client's reader
            self.failures += 1
            if self.failures == 1 or self.failures % 1000 == 0:
                log.exception("inline_handler_failed", subject=subject.decode(), count=self.failures)
        self.count += 1
        if self.count % self.yield_every == 0:
            # A backlog is parsed without returning to the loop; let timers
            # (audio-io's block clock) run in between.
            await asyncio.sleep(0)


def _hook(nc: Client, yield_every: int) -> _Hook | None:
    current = nc.__dict__.get("_process_msg")
    if isinstance(current, _Hook):
        return current
    original = getattr(nc, "_process_msg", None)
    if original is None or not isinstance(getattr(nc, "_subs", None), dict):
        return None  # not the nats-py we know: the ordinary path serves
    hook = _Hook(nc, original, yield_every)
    nc._process_msg = hook  # type: ignore[method-assign]
    return hook


async def subscribe_inline(
    nc: Client, subject: str, handler: Handler, *, yield_every: int = 32
) -> Subscription:
    """Subscribe `handler` to `subject`, called inline for each message
    (messages with headers take the ordinary path). After `yield_every`
    messages handled in a row the reader yields to the loop once. Meant
    for a subscription that lives as long as the client (the handler stays
    registered after an unsubscribe, unused)."""

    async def ordinary(msg: Msg) -> None:  # without the hook, or a message with headers
        handler(msg.subject, msg.data)

    hook = _hook(nc, yield_every)
    if hook is not None:
        hook.handlers[ordinary] = handler  # before SUB goes out: no message can miss it
    return await nc.subscribe(subject, cb=ordinary)
