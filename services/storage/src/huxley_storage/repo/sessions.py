"""Conversation sessions and their transcript turns, per persona.

Session ids count up per persona (the `personas` row holds the next one), so
they are never reused and move between backends unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from huxley_storage.repo.upsert import insert_or_ignore
from huxley_storage.rules import should_resume
from huxley_storage.tables import personas, sessions, turns


@dataclass(frozen=True)
class Session:
    id: int
    started_at: float
    last_active_at: float
    ended_at: float | None
    summary: str | None
    turn_count: int


@dataclass(frozen=True)
class Turn:
    idx: int
    role: str
    text: str
    turn_id: str | None
    ts: float


_SESSION_COLUMNS = (
    sessions.c.id,
    sessions.c.started_at,
    sessions.c.last_active_at,
    sessions.c.ended_at,
    sessions.c.summary,
    sessions.c.turn_count,
)


def _mine(persona: str, session_id: int) -> sa.ColumnElement[bool]:
    return sa.and_(sessions.c.persona == persona, sessions.c.id == session_id)


async def start(conn: AsyncConnection, persona: str, now: float, fresh: bool = False) -> tuple[int, bool]:
    """(session id, resumed): the latest session if it was active within the
    resume window (and `fresh` is not asked), else a new one."""
    await insert_or_ignore(conn, personas, {"persona": persona, "next_session_id": 1})
    # Locks the persona's row on PostgreSQL, so concurrent starts take turns.
    next_id = (
        await conn.execute(
            sa.select(personas.c.next_session_id).where(personas.c.persona == persona).with_for_update()
        )
    ).scalar_one()
    latest = (
        await conn.execute(
            sa.select(sessions.c.id, sessions.c.last_active_at)
            .where(sessions.c.persona == persona)
            .order_by(sessions.c.last_active_at.desc(), sessions.c.id.desc())
            .limit(1)
        )
    ).first()
    if latest is not None and not fresh and should_resume(latest.last_active_at, now):
        await conn.execute(
            sa.update(sessions).where(_mine(persona, latest.id)).values(last_active_at=now, ended_at=None)
        )
        return latest.id, True
    await conn.execute(
        sa.insert(sessions).values(
            persona=persona, id=next_id, started_at=now, last_active_at=now, turn_count=0
        )
    )
    await conn.execute(
        sa.update(personas).where(personas.c.persona == persona).values(next_session_id=next_id + 1)
    )
    return next_id, False


async def record_turn(
    conn: AsyncConnection,
    persona: str,
    session_id: int,
    role: str,
    text: str,
    turn_id: str | None,
    now: float,
    record_id: str | None = None,
) -> int | None:
    """Append a turn; its index, or None if there is no such session. A
    `record_id` already in the session returns that turn's index instead."""
    if record_id is not None:
        # Lock the session row first (PostgreSQL), so two copies of one retry
        # take turns and the second finds the first.
        locked = (
            await conn.execute(sa.select(sessions.c.id).where(_mine(persona, session_id)).with_for_update())
        ).first()
        if locked is None:
            return None
        done = (
            await conn.execute(
                sa.select(turns.c.idx).where(
                    turns.c.persona == persona,
                    turns.c.session_id == session_id,
                    turns.c.record_id == record_id,
                )
            )
        ).scalar_one_or_none()
        if done is not None:
            return int(done)
    count = (
        await conn.execute(
            sa.update(sessions)
            .where(_mine(persona, session_id))
            .values(turn_count=sessions.c.turn_count + 1, last_active_at=now)
            .returning(sessions.c.turn_count)
        )
    ).scalar_one_or_none()
    if count is None:
        return None
    idx = int(count) - 1
    await conn.execute(
        sa.insert(turns).values(
            persona=persona,
            session_id=session_id,
            idx=idx,
            role=role,
            text=text,
            turn_id=turn_id,
            ts=now,
            record_id=record_id,
        )
    )
    return idx


async def end(conn: AsyncConnection, persona: str, session_id: int, summary: str | None, now: float) -> bool:
    values: dict[str, object] = {"ended_at": now, "last_active_at": now}
    if summary is not None:
        values["summary"] = summary
    result = await conn.execute(sa.update(sessions).where(_mine(persona, session_id)).values(**values))
    return result.rowcount > 0


async def newest(conn: AsyncConnection, persona: str, limit: int) -> list[Session]:
    rows = await conn.execute(
        sa.select(*_SESSION_COLUMNS)
        .where(sessions.c.persona == persona)
        .order_by(sessions.c.started_at.desc(), sessions.c.id.desc())
        .limit(limit)
    )
    return [Session(*row) for row in rows]


async def get(conn: AsyncConnection, persona: str, session_id: int) -> Session | None:
    row = (await conn.execute(sa.select(*_SESSION_COLUMNS).where(_mine(persona, session_id)))).first()
    return Session(*row) if row is not None else None


async def turns_of(
    conn: AsyncConnection, persona: str, session_id: int, from_idx: int, limit: int
) -> list[Turn]:
    rows = await conn.execute(
        sa.select(turns.c.idx, turns.c.role, turns.c.text, turns.c.turn_id, turns.c.ts)
        .where(turns.c.persona == persona, turns.c.session_id == session_id, turns.c.idx >= from_idx)
        .order_by(turns.c.idx)
        .limit(limit)
    )
    return [Turn(*row) for row in rows]


async def all_turns(
    conn: AsyncConnection, persona: str, session_id: int, from_idx: int, batch: int = 200
) -> AsyncIterator[Turn]:
    while True:
        found = await turns_of(conn, persona, session_id, from_idx, batch)
        for turn in found:
            yield turn
        if len(found) < batch:
            return
        from_idx = found[-1].idx + 1


async def delete(conn: AsyncConnection, persona: str, session_id: int) -> bool:
    await conn.execute(sa.delete(turns).where(turns.c.persona == persona, turns.c.session_id == session_id))
    result = await conn.execute(sa.delete(sessions).where(_mine(persona, session_id)))
    return result.rowcount > 0


async def latest_summary(conn: AsyncConnection, persona: str) -> str | None:
    query = (
        sa.select(sessions.c.summary)
        .where(sessions.c.persona == persona, sessions.c.summary.is_not(None))
        .order_by(sessions.c.last_active_at.desc(), sessions.c.id.desc())
        .limit(1)
    )
    return (await conn.execute(query)).scalar_one_or_none()
