"""Everything audio-io publishes, in the order it was decided.

One queue and one publishing task: a press's `ptt start` always precedes its
mic frames, and `ptt stop` follows the last one. A caller that must know its
messages are out (the `clear` reply after the last `played`) waits for a
marker queued behind them.
"""

from __future__ import annotations

import asyncio
import contextlib

from nats.aio.client import Client

from huxley_runtime.logging import get_logger
from huxley_wire.codec import Message, encode

log = get_logger(component="outbox")


class Throttle:
    """Log the first occurrence of a (kind, key) and then every 200th."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}

    def __call__(self, kind: str, key: str) -> int | None:
        n = self.counts.get((kind, key), 0) + 1
        if len(self.counts) > 4096:
            self.counts.clear()
        self.counts[(kind, key)] = n
        return n if n == 1 or n % 200 == 0 else None


class Outbox:
    def __init__(self, throttle: Throttle) -> None:
        # (subject, payload) to publish, or a future to resolve once all before it went out.
        self._queue: asyncio.Queue[tuple[str, bytes] | asyncio.Future[None]] = asyncio.Queue()
        self._throttle = throttle

    def emit(self, subject: str, message: Message) -> None:
        self._queue.put_nowait((subject, encode(message)))

    def emit_raw(self, subject: str, data: bytes) -> None:
        self._queue.put_nowait((subject, data))

    async def published(self) -> None:
        """Return once everything queued so far has been handed to the bus."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(done)
        await done

    async def run(self, nc: Client) -> None:
        while True:
            item = await self._queue.get()
            if isinstance(item, asyncio.Future):
                if not item.done():
                    item.set_result(None)
                continue
            subject, data = item
            try:
                await nc.publish(subject, data)
            except Exception as exc:  # the bus is down: nats-py buffers while reconnecting
                if (n := self._throttle("publish_failed", subject)) is not None:
                    log.warning("publish_failed", subject=subject, error=str(exc), count=n)

    async def drain(self, nc: Client) -> None:
        """At stop: what is still queued (a final ptt stop, played counts) goes out."""
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if isinstance(item, asyncio.Future):
                item.cancel()
                continue
            with contextlib.suppress(Exception):
                await nc.publish(*item)
