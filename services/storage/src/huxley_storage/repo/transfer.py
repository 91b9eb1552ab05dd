"""Reading every row out, in a stable order, and writing rows back in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from huxley_storage.repo.upsert import upsert
from huxley_storage.tables import metadata, personas


def _table(kind: str) -> sa.Table:
    return metadata.tables[kind]


def _position(table: sa.Table) -> list[sa.Column[Any]]:
    """The primary key after the persona: a row's place within its persona."""
    return [c for c in table.primary_key.columns if c.name != "persona"]


async def rows_after(
    conn: AsyncConnection, persona: str, kind: str, after: list[Any] | None, batch: int = 200
) -> AsyncIterator[tuple[list[Any], dict[str, Any]]]:
    """(position, row) of one table for one persona, in primary-key order,
    from just after `after` (from the start when None)."""
    table = _table(kind)
    position = _position(table)
    while True:
        query = sa.select(table).where(table.c.persona == persona).order_by(*position).limit(batch)
        if after is not None:
            if not position:
                return  # one row per persona, already sent
            query = query.where(sa.tuple_(*position) > sa.tuple_(*after))
        found = [dict(row._mapping) for row in await conn.execute(query)]
        for row in found:
            after = [row[c.name] for c in position]
            yield after, row
        if len(found) < batch:
            return


async def write(conn: AsyncConnection, kind: str, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    if kind == "personas":
        await _raise_session_counters(conn, rows)
        return
    await upsert(conn, _table(kind), rows)
    if kind == "sessions":
        # Sessions imported without their counter row must not be reused by `start`.
        highest: dict[str, int] = {}
        for row in rows:
            highest[row["persona"]] = max(highest.get(row["persona"], 0), row["id"])
        counters = [{"persona": p, "next_session_id": last + 1} for p, last in highest.items()]
        await _raise_session_counters(conn, counters)


async def _raise_session_counters(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """A counter only goes up: an import never makes a session id reusable."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(personas)
    incoming = stmt.excluded.next_session_id
    higher = sa.case((incoming > personas.c.next_session_id, incoming), else_=personas.c.next_session_id)
    await conn.execute(
        stmt.on_conflict_do_update(index_elements=["persona"], set_={"next_session_id": higher}), rows
    )
