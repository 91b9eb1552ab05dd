"""Per-skill namespace quota (issue 12 item 3): a skill may keep at most so
many keys and so many bytes (keys plus values, UTF-8) in its settings, so one
skill cannot fill the disk of the home. Past it a write answers
`quota_exceeded`; a delete frees room at once."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from huxley_storage.tables import settings as t
from huxley_wire.errors import ErrorCode, WireError


@dataclass(frozen=True, slots=True)
class Limits:
    max_keys: int
    max_bytes: int


@dataclass(frozen=True, slots=True)
class Usage:
    keys: int
    bytes: int


def entry_size(key: str, value: str) -> int:
    return len(key.encode()) + len(value.encode())


def check(usage: Usage, limits: Limits, key: str, old: str | None, new: str) -> None:
    """Refuse the write of `new` under `key` (holding `old`) past the limits."""
    keys = usage.keys + (0 if old is not None else 1)
    size = usage.bytes - (entry_size(key, old) if old is not None else 0) + entry_size(key, new)
    if keys > limits.max_keys:
        raise WireError(
            ErrorCode.QUOTA_EXCEEDED,
            f"this skill already keeps {usage.keys} keys; the limit is {limits.max_keys} (delete some)",
        )
    if size > limits.max_bytes:
        raise WireError(
            ErrorCode.QUOTA_EXCEEDED,
            f"this write would make the skill's settings {size} bytes; the limit is {limits.max_bytes}",
        )


async def usage(conn: AsyncConnection, persona: str, skill: str) -> Usage:
    """Keys and bytes (UTF-8) the namespace holds now."""
    # SQLite's length() counts characters of text; of a blob, bytes.
    if conn.dialect.name == "sqlite":
        size = sa.func.length(sa.cast(t.c.key, sa.LargeBinary)) + sa.func.length(
            sa.cast(t.c.value, sa.LargeBinary)
        )
    else:
        size = sa.func.octet_length(t.c.key) + sa.func.octet_length(t.c.value)
    query = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(size), 0)).where(
        t.c.persona == persona, t.c.skill == skill
    )
    keys, total = (await conn.execute(query)).one()
    return Usage(int(keys), int(total))


async def enforce(
    conn: AsyncConnection, limits: Limits, persona: str, skill: str, key: str, value: str
) -> None:
    """Inside the write's transaction: refuse it if it would pass the quota."""
    old = (
        await conn.execute(
            sa.select(t.c.value).where(t.c.persona == persona, t.c.skill == skill, t.c.key == key)
        )
    ).scalar_one_or_none()
    check(await usage(conn, persona, skill), limits, key, old, value)
