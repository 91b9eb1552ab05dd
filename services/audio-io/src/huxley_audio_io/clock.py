"""The block clock: calls `tick` every block period on the event loop, and
can be told to tick at once (a PTT press must not wait for the next block
boundary), after which the period restarts from that moment.

A chain of loop timers rather than a sleeping task, so an early tick simply
replaces the pending timer. Behind by more than `max_lag` periods (the loop
was blocked), it skips ahead instead of rendering a burst of blocks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class BlockClock:
    def __init__(
        self,
        period_s: float,
        tick: Callable[[], None],
        *,
        max_lag: int = 5,
        on_slip: Callable[[float], None] | None = None,
    ) -> None:
        self.period_s = period_s
        self._tick = tick
        self._max_lag_s = max_lag * period_s
        self._on_slip = on_slip
        self._loop: asyncio.AbstractEventLoop | None = None
        self._due = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self.early_ticks = 0

    @property
    def running(self) -> bool:
        return self._timer is not None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._due = self._loop.time() + self.period_s
        self._timer = self._loop.call_at(self._due, self._on_timer)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def tick_now(self) -> None:
        """Tick at once; the next tick follows one period from now."""
        if self._loop is None or self._timer is None:
            return
        self._timer.cancel()
        self.early_ticks += 1
        self._due = self._loop.time()
        self._on_timer()

    def _on_timer(self) -> None:
        loop = self._loop
        assert loop is not None
        behind = loop.time() - self._due
        if behind > self._max_lag_s:
            if self._on_slip is not None:
                self._on_slip(behind)
            self._due = loop.time()
        try:
            self._tick()
        finally:
            self._due += self.period_s
            self._timer = loop.call_at(self._due, self._on_timer)
