"""The client's session browser: `list_sessions`, `get_session` and
`delete_session` asked of storage's `sessions.<persona>`, answered with the
client protocol's messages (or a `status` saying why not)."""

from __future__ import annotations

from typing import Any

from nats.aio.client import Client

from huxley_audio_io import client_protocol as proto
from huxley_runtime.logging import get_logger
from huxley_runtime.rpc import request
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages import storage

MAX_SESSION_TURNS = 2000  # what one session_detail may carry to the client

log = get_logger(component="sessions")

SessionRequest = proto.ListSessions | proto.GetSession | proto.DeleteSession


async def answer(nc: Client, subject: str, message: SessionRequest) -> proto.Out:
    """The client message that answers `message`; storage's errors become a `status`."""
    try:
        if isinstance(message, proto.ListSessions):
            infos = await request(nc, subject, storage.SessionList())
            listed = [
                {"id": i.session_id, **i.model_dump(mode="json", exclude={"v"})} for i in infos.sessions
            ]
            return proto.sessions_list(listed)
        if isinstance(message, proto.GetSession):
            turns: list[dict[str, Any]] = []
            next_turn: int | None = 0
            while next_turn is not None and len(turns) < MAX_SESSION_TURNS:  # storage pages by size
                get = storage.SessionGet(session_id=message.id, from_turn=next_turn)
                detail = await request(nc, subject, get)
                turns += [t.model_dump(mode="json", exclude={"v"}) for t in detail.turns]
                next_turn = detail.next_turn
            return proto.session_detail(message.id, turns[:MAX_SESSION_TURNS])
        gone = await request(nc, subject, storage.SessionDelete(session_id=message.id))
        return proto.session_deleted(message.id, gone.deleted)
    except WireError as exc:
        log.warning("sessions_request_failed", op=message.type, code=str(exc.code), error=exc.message)
        what = "not found" if exc.code is ErrorCode.NOT_FOUND else f"unavailable ({exc.code})"
        return proto.status(f"sessions {what}: {exc.message}")
