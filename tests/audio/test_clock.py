"""The block clock: a PTT press ticks it at once instead of at the next boundary."""

from __future__ import annotations

import asyncio

from huxley_audio_io.clock import BlockClock


async def test_tick_now_renders_at_once_and_restarts_the_period() -> None:
    ticks: list[float] = []
    loop = asyncio.get_running_loop()
    clock = BlockClock(3600.0, lambda: ticks.append(loop.time()))  # no timer tick in this test
    clock.start()
    try:
        clock.tick_now()
        assert len(ticks) == 1  # synchronously, not at the next boundary an hour away
        assert clock.early_ticks == 1
        assert clock.running
    finally:
        clock.stop()
    assert not clock.running
    clock.tick_now()  # stopped: nothing happens
    assert len(ticks) == 1


async def test_ticks_keep_coming_and_a_failing_tick_does_not_stop_the_clock() -> None:
    seen = asyncio.Event()
    calls = 0

    def tick() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        if calls == 3:
            seen.set()

    clock = BlockClock(0.001, tick)
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, _ctx: None)  # the first tick's error is expected
    clock.start()
    try:
        await asyncio.wait_for(seen.wait(), 10)
    finally:
        clock.stop()
        loop.set_exception_handler(None)
