"""Waiting for state that has no event of its own (health, snapshots, another
process's tables): poll a condition, bounded, never a fixed sleep."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

WAIT_S = 20.0  # a failure bound only: every wait ends as soon as its condition holds


async def until(condition: Callable[[], Any], timeout: float = WAIT_S, what: str = "condition") -> Any:
    """Poll an async or plain condition until it returns something truthy, and
    return that; an AssertionError naming `what` after `timeout` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                value = condition()
                if asyncio.iscoroutine(value):
                    value = await value
                if value:
                    return value
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"still waiting for {what} after {timeout} s") from None
