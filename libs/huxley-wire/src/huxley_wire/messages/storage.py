"""Storage service messages.

Subjects (see `Subjects`):
  storage.kv.<persona>.<skill>       per-skill settings (the skill comes from the subject)
  storage.schema.<persona>.<skill>   the skill's data_schema_version
  storage.sessions.<persona>         conversation sessions and transcript turns
  storage.admin                      export / import for moving a home between databases
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from huxley_wire.codec import Message, Request

MAX_KEY_BYTES = 512
MAX_VALUE_BYTES = 64 * 1024
SESSION_RESUME_S = 30 * 60


# -- settings ---------------------------------------------------------------
class KvGet(Request):
    op = "get"
    key: str


class KvSet(Request):
    op = "set"
    key: str
    value: str


class KvList(Request):
    op = "list"
    prefix: str = ""


class KvDelete(Request):
    op = "delete"
    key: str


class KvValue(Message):
    key: str
    value: str | None  # None: no such key


class KvItems(Message):
    items: list[tuple[str, str]]  # sorted by key, keys without the namespace


class KvDeleted(Message):
    deleted: bool


# -- schema versions --------------------------------------------------------
class SchemaGet(Request):
    op = "get"


class SchemaSet(Request):
    op = "set"
    version: int = Field(ge=1)


class SchemaVersion(Message):
    version: int | None  # None: never recorded


# -- sessions and transcripts -------------------------------------------------
class SessionStart(Request):
    """Start a session, or resume the latest one if it was active within 30 min."""

    op = "start"


class SessionRecordTurn(Request):
    op = "record_turn"
    session_id: int
    role: Literal["user", "assistant", "system", "tool"]
    text: str = Field(max_length=MAX_VALUE_BYTES)
    turn_id: str | None = None


class SessionEnd(Request):
    """Close a session with its short summary (written at disconnect)."""

    op = "end"
    session_id: int
    summary: str | None = Field(default=None, max_length=MAX_VALUE_BYTES)


class SessionList(Request):
    op = "list"
    limit: int = Field(default=50, ge=1, le=500)


class SessionGet(Request):
    op = "get"
    session_id: int


class SessionDelete(Request):
    op = "delete"
    session_id: int


class SessionLatestSummary(Request):
    op = "latest_summary"


class SessionStarted(Message):
    session_id: int
    resumed: bool


class TurnRecord(Message):
    idx: int
    role: str
    text: str
    turn_id: str | None = None
    ts: float  # seconds since the Unix epoch


class SessionInfo(Message):
    session_id: int
    started_at: float
    last_active_at: float
    ended_at: float | None = None
    summary: str | None = None
    turn_count: int = 0


class SessionDetail(SessionInfo):
    turns: list[TurnRecord] = Field(default_factory=list)


class SessionInfos(Message):
    sessions: list[SessionInfo]


class Summary(Message):
    summary: str | None


class SessionDeleted(Message):
    deleted: bool


# -- export / import -----------------------------------------------------------
class AdminExport(Request):
    """Every row of every persona as JSON lines (one reply, chunked by `offset`)."""

    op = "export"
    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=1000, ge=1, le=5000)


class AdminImport(Request):
    op = "import"
    lines: list[str]


class AdminExportChunk(Message):
    lines: list[str]
    next_offset: int | None  # None: that was the last chunk


class AdminImported(Message):
    imported: int
