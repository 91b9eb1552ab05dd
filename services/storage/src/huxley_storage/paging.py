"""Filling a reply page by size, so no reply outgrows the bus.

Every page holds at least one item (a single legal value always fits in a
storage reply) and stops before REPLY_PAGE_BYTES would be passed.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from huxley_wire.messages.storage import REPLY_PAGE_BYTES


def json_size(obj: Any) -> int:
    """Bytes `obj` takes in a reply."""
    return len(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode())


async def fill_page[T](
    source: AsyncIterator[T],
    size: Callable[[T], int],
    *,
    used: int = 0,
    max_items: int | None = None,
    budget: int = REPLY_PAGE_BYTES,
) -> tuple[list[T], T | None]:
    """Items from `source` until the page is full (`budget` bytes, counting
    `used` already, or `max_items`). Returns the page and the first item left
    out, or None when the source ran dry; the source is closed either way."""
    page: list[T] = []
    async with contextlib.aclosing(source):  # type: ignore[type-var]
        async for item in source:
            full = max_items is not None and len(page) >= max_items
            if full or (page and used + size(item) > budget):
                return page, item
            page.append(item)
            used += size(item)
    return page, None
