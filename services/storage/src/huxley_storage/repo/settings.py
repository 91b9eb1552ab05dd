"""Per-skill settings: a key-value namespace per (persona, skill)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from huxley_storage.repo.upsert import upsert
from huxley_storage.rules import LIKE_ESCAPE, like_prefix
from huxley_storage.tables import settings as t


def _namespace(persona: str, skill: str) -> sa.ColumnElement[bool]:
    return sa.and_(t.c.persona == persona, t.c.skill == skill)


async def get(conn: AsyncConnection, persona: str, skill: str, key: str) -> str | None:
    query = sa.select(t.c.value).where(_namespace(persona, skill), t.c.key == key)
    return (await conn.execute(query)).scalar_one_or_none()


async def namespace(conn: AsyncConnection, persona: str, skill: str, limit: int) -> dict[str, str]:
    """Up to `limit` (key: value) of the namespace."""
    rows = await conn.execute(sa.select(t.c.key, t.c.value).where(_namespace(persona, skill)).limit(limit))
    return {key: value for key, value in rows}


async def put(conn: AsyncConnection, persona: str, skill: str, key: str, value: str, now: float) -> None:
    row = {"persona": persona, "skill": skill, "key": key, "value": value, "updated_at": now}
    await upsert(conn, t, row)


async def put_many(conn: AsyncConnection, rows: list[dict[str, object]]) -> None:
    """Upsert full rows (persona, skill, key, value, updated_at) in one statement."""
    await upsert(conn, t, rows)


async def delete(conn: AsyncConnection, persona: str, skill: str, key: str) -> bool:
    result = await conn.execute(sa.delete(t).where(_namespace(persona, skill), t.c.key == key))
    return result.rowcount > 0


async def scan(
    conn: AsyncConnection, persona: str, skill: str, prefix: str, after: str | None, limit: int
) -> list[tuple[str, str]]:
    """Up to `limit` (key, value) pairs whose key starts with `prefix`, sorted,
    keys greater than `after` only.

    SQLite's LIKE ignores ASCII case, so the exact `substr` comparison keeps
    the match literal on both backends; LIKE still lets PostgreSQL use the
    primary key's index ("C" collation)."""
    query = sa.select(t.c.key, t.c.value).where(_namespace(persona, skill))
    if prefix:
        query = query.where(
            t.c.key.like(like_prefix(prefix), escape=LIKE_ESCAPE),
            sa.func.substr(t.c.key, 1, len(prefix)) == prefix,
        )
    if after is not None:
        query = query.where(t.c.key > after)
    rows = await conn.execute(query.order_by(t.c.key).limit(limit))
    return [(key, value) for key, value in rows]


async def items(
    conn: AsyncConnection, persona: str, skill: str, prefix: str, after: str | None, batch: int = 200
) -> AsyncIterator[tuple[str, str]]:
    """Every matching (key, value) after `after`, sorted, fetched `batch` rows at a time."""
    while True:
        rows = await scan(conn, persona, skill, prefix, after, batch)
        for row in rows:
            yield row
        if len(rows) < batch:
            return
        after = rows[-1][0]
