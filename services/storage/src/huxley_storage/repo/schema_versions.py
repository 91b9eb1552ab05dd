"""Each skill's data_schema_version, per persona (the `schema_meta` table)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from huxley_storage.repo.upsert import upsert
from huxley_storage.tables import schema_meta as t


async def get(conn: AsyncConnection, persona: str, skill: str) -> int | None:
    query = sa.select(t.c.data_schema_version).where(t.c.persona == persona, t.c.skill == skill)
    return (await conn.execute(query)).scalar_one_or_none()


async def put(conn: AsyncConnection, persona: str, skill: str, version: int, now: float) -> None:
    row = {"persona": persona, "skill": skill, "data_schema_version": version, "updated_at": now}
    await upsert(conn, t, row)
