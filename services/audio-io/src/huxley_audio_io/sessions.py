"""The client's session browser: `list_sessions`, `get_session` and
`delete_session` asked of storage's `sessions.<persona>`, answered with the
client protocol's messages in the reference's shapes (or a `status` saying
why not).

The reference's rows carry ISO-8601 dates and a preview (the first user line,
cut at 200 characters); storage keeps epoch seconds and no preview, so the
rows are built here: `row` is pure, the preview is read from the first page
of each session's turns.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from nats.aio.client import Client

from huxley_audio_io import client_protocol as proto
from huxley_runtime.logging import get_logger
from huxley_runtime.rpc import request
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages import storage

MAX_SESSION_TURNS = 2000  # what one session_detail may carry to the client
PREVIEW_CHARS = 200  # the reference's cut
PREVIEW_READS = 8  # previews read at once

log = get_logger(component="sessions")

SessionRequest = proto.ListSessions | proto.GetSession | proto.DeleteSession


def iso(ts: float | None) -> str | None:
    """Epoch seconds as an ISO-8601 UTC string (what the reference's clients parse)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def preview(turns: list[storage.TurnRecord]) -> str | None:
    """The first user line, as the reference stores it: cut, never rewritten."""
    first = next((t.text for t in turns if t.role == "user" and t.text), None)
    return first[:PREVIEW_CHARS] if first is not None else None


def row(info: storage.SessionInfo, first_turns: list[storage.TurnRecord]) -> dict[str, Any]:
    """One sessions_list row in the reference's shape."""
    return {
        "id": info.session_id,
        "started_at": iso(info.started_at),
        "ended_at": iso(info.ended_at),
        "last_turn_at": iso(info.last_active_at) if info.turn_count else None,
        "turn_count": info.turn_count,
        "preview": preview(first_turns),
        "summary": info.summary,
    }


def turn(record: storage.TurnRecord) -> dict[str, Any]:
    """One session_detail turn: the reference's {idx, role, text}."""
    return {"idx": record.idx, "role": record.role, "text": record.text}


async def answer(nc: Client, subject: str, message: SessionRequest) -> proto.Out:
    """The client message that answers `message`; storage's errors become a `status`."""
    try:
        if isinstance(message, proto.ListSessions):
            infos = await request(nc, subject, storage.SessionList())
            gate = asyncio.Semaphore(PREVIEW_READS)
            firsts = await asyncio.gather(*(_first_page(nc, subject, i, gate) for i in infos.sessions))
            return proto.sessions_list([row(i, f) for i, f in zip(infos.sessions, firsts, strict=True)])
        if isinstance(message, proto.GetSession):
            turns: list[dict[str, Any]] = []
            next_turn: int | None = 0
            while next_turn is not None and len(turns) < MAX_SESSION_TURNS:  # storage pages by size
                get = storage.SessionGet(session_id=message.id, from_turn=next_turn)
                detail = await request(nc, subject, get)
                turns += [turn(t) for t in detail.turns]
                next_turn = detail.next_turn
            return proto.session_detail(message.id, turns[:MAX_SESSION_TURNS])
        gone = await request(nc, subject, storage.SessionDelete(session_id=message.id))
        if not gone.deleted:
            return proto.status(f"sessions not found: session {message.id} does not exist")
        return proto.session_deleted(message.id)
    except WireError as exc:
        log.warning("sessions_request_failed", op=message.type, code=str(exc.code), error=exc.message)
        what = "not found" if exc.code is ErrorCode.NOT_FOUND else f"unavailable ({exc.code})"
        return proto.status(f"sessions {what}: {exc.message}")


async def _first_page(
    nc: Client, subject: str, info: storage.SessionInfo, gate: asyncio.Semaphore
) -> list[storage.TurnRecord]:
    """The first page of a session's turns (where its first user line is); none if unreadable."""
    if not info.turn_count:
        return []
    async with gate:
        try:
            detail = await request(nc, subject, storage.SessionGet(session_id=info.session_id))
        except WireError as exc:
            log.warning("session_preview_unreadable", session=info.session_id, error=exc.message)
            return []
    return detail.turns
