"""Storage service messages.

Subjects (see `Subjects`):
  storage.kv.<persona>.<skill>       per-skill settings (the skill comes from the subject)
  storage.schema.<persona>.<skill>   the skill's data_schema_version
  storage.sessions.<persona>         conversation sessions and transcript turns
  storage.admin                      export / import for moving a home between databases

Sizes. Keys are 1-512 bytes and values, transcript texts and summaries at most
64 KiB, all counted in UTF-8. JSON escaping can make a legal value up to six
times longer on the wire (control characters become `\\u00XX`), so storage
requests may be up to `STORAGE_REQUEST_MAX_BYTES` and a client decodes storage
replies up to `STORAGE_REPLY_MAX_BYTES`. Replies that could grow without bound
(lists, transcripts, exports) are paged by size: every page holds at least one
item and stops adding items once `REPLY_PAGE_BYTES` are used.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from huxley_wire.codec import Message, Ok, Request
from huxley_wire.subjects import InvalidToken, Subjects

MAX_KEY_BYTES = 512
MAX_VALUE_BYTES = 64 * 1024
SESSION_RESUME_S = 30 * 60

STORAGE_REQUEST_MAX_BYTES = 512 * 1024
STORAGE_REPLY_MAX_BYTES = 1024 * 1024
REPLY_PAGE_BYTES = 192 * 1024

Role = Literal["user", "assistant", "system", "tool"]


def kv_namespace(subjects: Subjects, subject: str) -> tuple[str, str]:
    """(persona, skill) named by a `storage.kv` or `storage.schema` subject.

    Raises InvalidToken when a token is not a valid persona or skill name."""
    *_, persona, skill = subject.split(".")
    # The schema subject is built only when the kv one does not match (every get pays this).
    if subject != subjects.storage_kv(persona, skill) and subject != subjects.storage_schema(persona, skill):
        raise InvalidToken(f"{subject!r} is not a storage namespace subject")
    return persona, skill


def sessions_persona(subjects: Subjects, subject: str) -> str:
    """The persona named by a `storage.sessions` subject (InvalidToken if malformed)."""
    persona = subject.rsplit(".", 1)[-1]
    if subject != subjects.storage_sessions(persona):
        raise InvalidToken(f"{subject!r} is not a storage sessions subject")
    return persona


class KvSet(Request[Ok]):
    op = "set"
    key: str
    value: str


class KvValue(Message):
    key: str
    value: str | None  # None: no such key


# -- settings ---------------------------------------------------------------
class KvGet(Request[KvValue]):
    op = "get"
    key: str


class KvItems(Message):
    items: list[tuple[str, str]]  # sorted by key, keys without the namespace
    next_after: str | None = None  # set when more items follow: pass it as `after`


class KvList(Request[KvItems]):
    """Keys starting with `prefix` (literally), sorted; paged after `after`."""

    op = "list"
    prefix: str = ""
    after: str | None = None  # the previous page's `next_after`


class KvDeleted(Message):
    deleted: bool


class KvDelete(Request[KvDeleted]):
    op = "delete"
    key: str


class SchemaSet(Request[Ok]):
    op = "set"
    version: int = Field(ge=1)


class SchemaVersion(Message):
    version: int | None  # None: never recorded


# -- schema versions --------------------------------------------------------
class SchemaGet(Request[SchemaVersion]):
    op = "get"


class SessionRecordTurn(Request[Ok]):
    op = "record_turn"
    session_id: int
    role: Role
    text: str  # at most MAX_VALUE_BYTES in UTF-8 (`too_large` otherwise)
    turn_id: str | None = Field(default=None, max_length=128)
    # Chosen by the writer: the same record_id in a session is stored once, so retries are safe.
    record_id: str | None = Field(default=None, min_length=1, max_length=64)


class SessionEnd(Request[Ok]):
    """Close a session with its short summary (written at disconnect)."""

    op = "end"
    session_id: int
    summary: str | None = None  # at most MAX_VALUE_BYTES in UTF-8


class SessionStarted(Message):
    session_id: int
    resumed: bool


# -- sessions and transcripts -------------------------------------------------
class SessionStart(Request[SessionStarted]):
    """Start a session, or resume the latest one if it was active within 30 min
    (`fresh`: always a new one — the client's `reset`)."""

    op = "start"
    fresh: bool = False


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
    next_turn: int | None = None  # set when more turns follow: pass it as `from_turn`


class SessionGet(Request[SessionDetail]):
    op = "get"
    session_id: int
    from_turn: int = Field(default=0, ge=0)  # the previous page's `next_turn`


class SessionInfos(Message):
    sessions: list[SessionInfo]
    truncated: bool = False  # fewer than `limit` because the page was full


class SessionList(Request[SessionInfos]):
    op = "list"
    limit: int = Field(default=50, ge=1, le=500)


class Summary(Message):
    summary: str | None


class SessionLatestSummary(Request[Summary]):
    op = "latest_summary"


class SessionDeleted(Message):
    deleted: bool


class SessionDelete(Request[SessionDeleted]):
    op = "delete"
    session_id: int


class AdminExportChunk(Message):
    lines: list[str]
    next_cursor: str | None  # None: that was the last chunk


# -- export / import -----------------------------------------------------------
class AdminExport(Request[AdminExportChunk]):
    """Every row of every persona as JSON lines, one chunk per request.

    Pass the previous chunk's `next_cursor` to continue; the cursor names the
    last row sent, so rows written or deleted meanwhile never shift the rest."""

    op = "export"
    cursor: str | None = None
    limit: int = Field(default=1000, ge=1, le=5000)


class AdminImported(Message):
    imported: int


class AdminImport(Request[AdminImported]):
    """Rows as exported; importing the same lines twice changes nothing."""

    op = "import"
    lines: list[str]
    first_line: int = Field(default=1, ge=1)  # the number of lines[0] in the caller's file, for errors
