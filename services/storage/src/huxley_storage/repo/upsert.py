"""INSERT ... ON CONFLICT DO UPDATE on both backends."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


async def upsert(
    conn: AsyncConnection,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]] | Mapping[str, Any],
    *,
    keys: Sequence[str] | None = None,
) -> None:
    """Insert rows, replacing every non-key column of rows that exist."""
    index = list(keys) if keys is not None else [c.name for c in table.primary_key.columns]
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(table)
    update = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in index}
    await conn.execute(stmt.on_conflict_do_update(index_elements=index, set_=update), rows)


async def insert_or_ignore(conn: AsyncConnection, table: sa.Table, row: Mapping[str, Any]) -> None:
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    await conn.execute(insert(table).on_conflict_do_nothing(), row)
