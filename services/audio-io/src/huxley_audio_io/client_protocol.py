"""The client WebSocket protocol, version 2 (compatible with the reference).

JSON text frames, each with a `type`; audio is base64 PCM16 24 kHz mono.
Inbound messages are parsed into typed models here; anything malformed raises
`ClientMessageError` with a reason the gateway logs (and otherwise ignores).
Outbound messages are built by the functions at the end, one per type.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from huxley_wire import bounded_json
from huxley_wire.codec import describe_validation
from huxley_wire.errors import WireError

# `restart_server` from a client: each part restarts on its own, under its supervisor.
RESTART_REFUSED = (
    "Restart is not available from the client: each part of Huxley restarts on its own under its "
    "supervisor. Use reset for a fresh conversation, or `huxley` on the host."
)

PROTOCOL_VERSION = 2
MAX_TEXT_FRAME = 256 * 1024  # the WebSocket layer closes the connection (1009) above this


class ClientMessageError(ValueError):
    """A client message we ignore; `refused` marks audio refused for its size or shape."""

    def __init__(self, reason: str, *, refused: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.refused = refused


class _In(BaseModel):
    # Clients may add fields; we read what we know.
    model_config = ConfigDict(extra="ignore", frozen=True)


class MicAudio(_In):
    type: Literal["audio"]
    data: str  # base64 PCM16; decoded and checked by parse_client_message


class PttStart(_In):
    type: Literal["ptt_start"]


class PttStop(_In):
    type: Literal["ptt_stop"]


class WakeWord(_In):
    type: Literal["wake_word"]


class Reset(_In):
    type: Literal["reset"]


class SetLanguage(_In):
    type: Literal["set_language"]
    language: str | None = Field(default=None, max_length=16)

    @field_validator("language")
    @classmethod
    def _normalise(cls, value: str | None) -> str | None:
        return value.strip().lower() or None if value else None


class ClientEvent(_In):
    type: Literal["client_event"]
    event: str = Field(min_length=1, max_length=128)
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("data", mode="before")
    @classmethod
    def _object_or_empty(cls, value: Any) -> Any:
        return value if isinstance(value, dict) else {}


class ListSessions(_In):
    type: Literal["list_sessions"]


class GetSession(_In):
    type: Literal["get_session"]
    id: StrictInt


class DeleteSession(_In):
    type: Literal["delete_session"]
    id: StrictInt


class GetSkillsState(_In):
    type: Literal["get_skills_state"]


class SetSkillEnabled(_In):
    type: Literal["set_skill_enabled"]
    skill: str = Field(min_length=1, max_length=128)
    enabled: StrictBool


class SetSkillConfig(_In):
    type: Literal["set_skill_config"]
    skill: str = Field(min_length=1, max_length=128)
    config: dict[str, Any]


class SetSkillSecret(_In):
    type: Literal["set_skill_secret"]
    skill: str = Field(min_length=1, max_length=128)
    key: str = Field(min_length=1, max_length=128)
    value: str = Field(max_length=16 * 1024, repr=False)  # never in a repr or a log line


class DeleteSkillSecret(_In):
    type: Literal["delete_skill_secret"]
    skill: str = Field(min_length=1, max_length=128)
    key: str = Field(min_length=1, max_length=128)


class GetMarketplace(_In):
    type: Literal["get_marketplace"]


class InstallSkill(_In):
    type: Literal["install_skill"]
    package: str = Field(min_length=1, max_length=214)


class RestartServer(_In):
    type: Literal["restart_server"]


SkillsPanelMessage = GetSkillsState | SetSkillEnabled | SetSkillConfig | SetSkillSecret | DeleteSkillSecret

ClientMessage = (
    MicAudio
    | PttStart
    | PttStop
    | WakeWord
    | Reset
    | SetLanguage
    | ClientEvent
    | ListSessions
    | GetSession
    | DeleteSession
    | GetSkillsState
    | SetSkillEnabled
    | SetSkillConfig
    | SetSkillSecret
    | DeleteSkillSecret
    | GetMarketplace
    | InstallSkill
    | RestartServer
)
_ADAPTER: TypeAdapter[ClientMessage] = TypeAdapter(Annotated[ClientMessage, Field(discriminator="type")])
KNOWN_TYPES = frozenset(
    get_args(model.model_fields["type"].annotation)[0] for model in get_args(ClientMessage)
)


def parse_client_message(raw: str | bytes) -> ClientMessage:
    if isinstance(raw, bytes):
        raise ClientMessageError("binary frames are not part of the protocol; send JSON text")
    if len(raw) > MAX_TEXT_FRAME:
        raise ClientMessageError(f"message of {len(raw)} chars, limit {MAX_TEXT_FRAME}", refused=True)
    try:  # the wire's bounded decoder: depth, huge integers and lone surrogates refused too
        obj = bounded_json.loads(raw.encode("utf-8", "surrogatepass"), 4 * MAX_TEXT_FRAME)
    except WireError as exc:
        raise ClientMessageError(f"not acceptable JSON: {exc.message}") from None
    if not isinstance(obj, dict):
        raise ClientMessageError(f"expected a JSON object, got {type(obj).__name__}")
    kind = obj.get("type")
    if kind not in KNOWN_TYPES:
        raise ClientMessageError(f"unknown type {kind!r}")
    try:
        return _ADAPTER.validate_python(obj)
    except ValidationError as exc:
        raise ClientMessageError(f"{kind}: {describe_validation(exc)}") from None


def decode_audio(message: MicAudio, max_bytes: int) -> bytes:
    """The PCM of an `audio` message; refused when oversize, odd or not base64."""
    if len(message.data) > (max_bytes + 2) // 3 * 4:
        raise ClientMessageError(f"audio over {max_bytes} bytes refused", refused=True)
    try:
        pcm = base64.b64decode(message.data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ClientMessageError(f"audio is not base64: {exc}", refused=True) from None
    if not pcm:
        raise ClientMessageError("empty audio refused", refused=True)
    if len(pcm) % 2:
        raise ClientMessageError(
            f"audio of {len(pcm)} bytes refused: PCM16 needs an even count", refused=True
        )
    if len(pcm) > max_bytes:
        raise ClientMessageError(f"audio of {len(pcm)} bytes refused, limit {max_bytes}", refused=True)
    return pcm


# -- server -> client ---------------------------------------------------------------
Out = dict[str, Any]


def hello(
    language: str | None,
    current_persona: str,
    available_personas: list[dict[str, str]],
    install_in_progress: bool = False,
) -> Out:
    """`available_personas`: objects {name, display_name, language}."""
    return {
        "type": "hello",
        "protocol": PROTOCOL_VERSION,
        "language": language,
        "current_persona": current_persona,
        "available_personas": available_personas,
        "install_in_progress": install_in_progress,
    }


def state(value: str) -> Out:
    return {"type": "state", "value": value}


def input_mode(mode: str, reason: str, claim_id: str | None) -> Out:
    return {"type": "input_mode", "mode": mode, "reason": reason, "claim_id": claim_id}


def audio(pcm: bytes) -> Out:
    return {"type": "audio", "data": base64.b64encode(pcm).decode("ascii")}


def audio_clear() -> Out:
    return {"type": "audio_clear"}


def status(message: str) -> Out:
    return {"type": "status", "message": message}


def transcript(role: str, text: str, item_id: str | None = None) -> Out:
    """A whole line, once heard. `item_id` (ours, additive) names the live line
    its `transcript_delta`s built, which this final text replaces."""
    message: Out = {"type": "transcript", "role": role, "text": text}
    if item_id is not None:
        message["item_id"] = item_id
    return message


def transcript_delta(role: str, delta: str, item_id: str | None, turn_id: str | None) -> Out:
    """The assistant's live text (ours, additive: the reference clients ignore
    unknown types, and show the whole line when `transcript` comes)."""
    return {"type": "transcript_delta", "role": role, "delta": delta, "item_id": item_id, "turn_id": turn_id}


def model_speaking(value: bool) -> Out:
    return {"type": "model_speaking", "value": value}


def set_volume(level: int) -> Out:
    return {"type": "set_volume", "level": level}


def claim_started(claim_id: str, skill: str | None, title: str | None) -> Out:
    return {"type": "claim_started", "claim_id": claim_id, "skill": skill, "title": title}


def claim_ended(claim_id: str, end_reason: str) -> Out:
    return {"type": "claim_ended", "claim_id": claim_id, "end_reason": end_reason}


def stream_started(stream_id: str, label: str | None, preroll_ms: int) -> Out:
    return {"type": "stream_started", "stream_id": stream_id, "label": label, "preroll_ms": preroll_ms}


def stream_ended(stream_id: str, end_reason: str) -> Out:
    return {"type": "stream_ended", "stream_id": stream_id, "end_reason": end_reason}


def dev_event(kind: str, payload: dict[str, Any]) -> Out:
    return {"type": "dev_event", "kind": kind, "payload": payload}


def server_event(event: str, data: dict[str, Any]) -> Out:
    return {"type": "server_event", "event": event, "data": data}


def sessions_list(sessions: list[dict[str, Any]]) -> Out:
    return {"type": "sessions_list", "sessions": sessions}


def session_detail(session_id: int, turns: list[dict[str, Any]]) -> Out:
    return {"type": "session_detail", "id": session_id, "turns": turns}


def session_deleted(session_id: int) -> Out:
    return {"type": "session_deleted", "id": session_id}


def skills_state(persona: str | None, skills: list[dict[str, Any]]) -> Out:
    return {"type": "skills_state", "persona": persona, "skills": skills}


def marketplace_state(
    skills: list[dict[str, Any]],
    *,
    registry_version: str | None,
    generated_at: str | None,
    fetched_at_ms: int,
    stale: bool,
    error: str | None,
) -> Out:
    return {
        "type": "marketplace_state",
        "skills": skills,
        "registry_version": registry_version,
        "generated_at": generated_at,
        "fetched_at_ms": fetched_at_ms,
        "stale": stale,
        "error": error,
    }


def install_event(
    kind: Literal["started", "complete"],
    package: str,
    *,
    ok: bool,
    error_code: str | None = None,
    error_message: str | None = None,
    restart_required: bool = False,
) -> Out:
    return {
        "type": "install_event",
        "kind": kind,
        "package": package,
        "ok": ok,
        "error_code": error_code,
        "error_message": error_message,
        "restart_required": restart_required,
    }
