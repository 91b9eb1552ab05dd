"""Typed clients of the storage service, for the services that keep state in it.

`SettingsClient` is what a skill sees as `ctx.storage`: its methods match the
skill SDK's `SkillStorage` exactly, and every write has been committed when
it returns. Settings and schema operations are idempotent, so they are
retried while storage is unavailable (not running, restarting, its database
down) until a deadline; then `StorageUnavailable` says what failed.
"""

from __future__ import annotations

from nats.aio.client import Client
from pydantic import BaseModel

from huxley_runtime.retry import IDEMPOTENT, ONCE, RetryPolicy
from huxley_runtime.rpc import DEFAULT_TIMEOUT_S, request_with_retry
from huxley_wire.codec import Request
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages import storage as m
from huxley_wire.subjects import Subjects

DEFAULT_DEADLINE_S = 30.0


class StorageUnavailable(WireError):
    """Storage did not answer an operation in time, after retrying."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.UNAVAILABLE, message)


class _Caller:
    def __init__(self, nc: Client, *, deadline_s: float, timeout_s: float) -> None:
        self.nc = nc
        self.deadline_s = deadline_s
        self.timeout_s = timeout_s

    async def retried[M: BaseModel](
        self, subject: str, message: Request[M], policy: RetryPolicy = IDEMPOTENT
    ) -> M:
        """An idempotent request, retried while storage is unavailable or slow."""
        try:
            return await request_with_retry(
                self.nc,
                subject,
                message,
                policy=policy,
                timeout=self.timeout_s,
                deadline_s=self.deadline_s,
                max_reply_bytes=m.STORAGE_REPLY_MAX_BYTES,
            )
        except WireError as exc:
            if exc.code not in policy.retry_on:
                raise
            raise StorageUnavailable(
                f"storage did not complete {message.op!r} on {subject} within {self.deadline_s:g} s: "
                f"{exc.code}: {exc.message}"
            ) from exc

    async def unreceived[M: BaseModel](self, subject: str, message: Request[M]) -> M:
        """A request that must not run twice (it appends), under ONCE: retried
        only while nobody received it (no storage on the bus, or storage
        refused it as unavailable), never after a timeout, which may hide a
        success."""
        return await self.retried(subject, message, policy=ONCE)


class SettingsClient:
    """One skill's settings for one persona (the SDK's `SkillStorage`)."""

    def __init__(
        self,
        nc: Client,
        subjects: Subjects,
        persona: str,
        skill: str,
        *,
        deadline_s: float = DEFAULT_DEADLINE_S,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.subject = subjects.storage_kv(persona, skill)
        self._caller = _Caller(nc, deadline_s=deadline_s, timeout_s=timeout_s)

    async def get_setting(self, key: str, default: str | None = None) -> str | None:
        found = await self._caller.retried(self.subject, m.KvGet(key=key))
        return found.value if found.value is not None else default

    async def set_setting(self, key: str, value: str) -> None:
        await self._caller.retried(self.subject, m.KvSet(key=key, value=value))

    async def list_settings(self, prefix: str = "") -> list[tuple[str, str]]:
        items: list[tuple[str, str]] = []
        after: str | None = None
        while True:
            page = await self._caller.retried(self.subject, m.KvList(prefix=prefix, after=after))
            items.extend((key, value) for key, value in page.items)
            if page.next_after is None:
                return items
            after = page.next_after

    async def delete_setting(self, key: str) -> None:
        await self._caller.retried(self.subject, m.KvDelete(key=key))


class SchemaClient:
    """One skill's data_schema_version for one persona."""

    def __init__(
        self,
        nc: Client,
        subjects: Subjects,
        persona: str,
        skill: str,
        *,
        deadline_s: float = DEFAULT_DEADLINE_S,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.subject = subjects.storage_schema(persona, skill)
        self._caller = _Caller(nc, deadline_s=deadline_s, timeout_s=timeout_s)

    async def get_version(self) -> int | None:
        return (await self._caller.retried(self.subject, m.SchemaGet())).version

    async def set_version(self, version: int) -> None:
        await self._caller.retried(self.subject, m.SchemaSet(version=version))


class SessionsClient:
    """Conversation sessions and transcripts of one persona (for the bridge).

    Everything is retried while storage is unavailable: `start` resumes the
    session a lost reply created, and the rest are reads or idempotent.
    `record_turn` appends: with a `record_id` it is idempotent and retried
    like the rest; without one, only while nobody received it (a timeout
    raises and the caller decides)."""

    def __init__(
        self,
        nc: Client,
        subjects: Subjects,
        persona: str,
        *,
        deadline_s: float = DEFAULT_DEADLINE_S,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.subject = subjects.storage_sessions(persona)
        self._caller = _Caller(nc, deadline_s=deadline_s, timeout_s=timeout_s)

    async def start(self, fresh: bool = False) -> m.SessionStarted:
        """`fresh`: a new session even if the latest one could be resumed.
        (A retry after a lost reply may then open a second one: harmless, it stays empty.)"""
        return await self._caller.retried(self.subject, m.SessionStart(fresh=fresh))

    async def record_turn(
        self,
        session_id: int,
        role: m.Role,
        text: str,
        turn_id: str | None = None,
        record_id: str | None = None,
    ) -> None:
        """Append one line. With a `record_id` it is retried like any idempotent
        request (storage stores that id once per session); without one, only
        while nobody received it."""
        message = m.SessionRecordTurn(
            session_id=session_id, role=role, text=text, turn_id=turn_id, record_id=record_id
        )
        if record_id is not None:
            await self._caller.retried(self.subject, message)
        else:
            await self._caller.unreceived(self.subject, message)

    async def end(self, session_id: int, summary: str | None = None) -> None:
        await self._caller.retried(self.subject, m.SessionEnd(session_id=session_id, summary=summary))

    async def list(self, limit: int = 50) -> list[m.SessionInfo]:
        return (await self._caller.retried(self.subject, m.SessionList(limit=limit))).sessions

    async def get(self, session_id: int) -> m.SessionDetail:
        """The session with every turn (fetched page by page)."""
        first = await self._caller.retried(self.subject, m.SessionGet(session_id=session_id))
        turns = list(first.turns)
        next_turn = first.next_turn
        while next_turn is not None:
            page = await self._caller.retried(
                self.subject, m.SessionGet(session_id=session_id, from_turn=next_turn)
            )
            turns.extend(page.turns)
            next_turn = page.next_turn
        return first.model_copy(update={"turns": turns, "next_turn": None})

    async def delete(self, session_id: int) -> bool:
        return (await self._caller.retried(self.subject, m.SessionDelete(session_id=session_id))).deleted

    async def latest_summary(self) -> str | None:
        return (await self._caller.retried(self.subject, m.SessionLatestSummary())).summary
