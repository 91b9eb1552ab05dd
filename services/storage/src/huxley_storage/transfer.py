"""The export format: one JSON object per line, one line per row.

`{"kind": "settings", "persona": "basic", "skill": "timers", "key": "timer:1",
"value": "...", "updated_at": 1763784000.1}` — `kind` is the table, the other
fields are its columns. Per persona the kinds come in `KINDS` order, so a
session always arrives before its turns. Every row has a natural key
(persona first), so importing the same lines twice changes nothing.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from huxley_storage.rules import check_key, check_text
from huxley_wire.codec import describe_validation
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.subjects import token

Kind = Literal["personas", "schema_meta", "settings", "sessions", "turns"]
KINDS: tuple[Kind, ...] = get_args(Kind)


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    persona: str

    @field_validator("persona")
    @classmethod
    def _persona(cls, value: str) -> str:
        return token(value, "persona")


class PersonaRow(_Row):
    kind: Literal["personas"]
    next_session_id: int = Field(ge=1)


class SchemaRow(_Row):
    kind: Literal["schema_meta"]
    skill: str
    data_schema_version: int = Field(ge=1)
    updated_at: float

    @field_validator("skill")
    @classmethod
    def _skill(cls, value: str) -> str:
        return token(value, "skill")


class SettingRow(_Row):
    kind: Literal["settings"]
    skill: str
    key: str
    value: str
    updated_at: float

    @field_validator("skill")
    @classmethod
    def _skill(cls, value: str) -> str:
        return token(value, "skill")


class SessionRow(_Row):
    kind: Literal["sessions"]
    id: int = Field(ge=1)
    started_at: float
    last_active_at: float
    ended_at: float | None
    summary: str | None
    turn_count: int = Field(ge=0)


class TurnRow(_Row):
    kind: Literal["turns"]
    session_id: int = Field(ge=1)
    idx: int = Field(ge=0)
    role: str = Field(max_length=16)
    text: str
    turn_id: str | None = Field(max_length=128)
    ts: float
    record_id: str | None = Field(default=None, max_length=64)  # absent from exports made before 0002


Row = PersonaRow | SchemaRow | SettingRow | SessionRow | TurnRow
_ROW = TypeAdapter[Row](Annotated[Row, Field(discriminator="kind")])


def to_line(kind: str, columns: dict[str, Any]) -> str:
    return json.dumps({"kind": kind, **columns}, ensure_ascii=False, separators=(",", ":"))


def from_line(line: str, number: int) -> Row:
    """A validated row; `WireError(invalid)` naming the line if it is not one."""
    try:
        row = _ROW.validate_json(line)
    except ValidationError as exc:
        raise WireError(ErrorCode.INVALID, f"line {number}: {describe_validation(exc)}") from None
    try:
        match row:
            case SettingRow():
                check_key(row.key)
                check_text(row.value)
            case SessionRow(summary=str() as summary):
                check_text(summary, "summary")
            case TurnRow():
                check_text(row.text, "text")
    except WireError as exc:
        raise WireError(exc.code, f"line {number}: {exc.message}") from None
    return row


def columns(row: Row) -> dict[str, Any]:
    return row.model_dump(exclude={"kind"})


class Cursor(BaseModel):
    """Where an export stopped: the last row sent (persona, kind, its key)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    persona: str
    kind: Kind
    after: list[str | int]

    def encode(self) -> str:
        return self.model_dump_json()

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise WireError(ErrorCode.INVALID, f"not an export cursor: {describe_validation(exc)}") from None
