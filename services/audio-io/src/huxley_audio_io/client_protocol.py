"""The client WebSocket protocol, version 2 (compatible with the reference).

JSON text frames, each with a `type`; audio is base64 PCM16 24 kHz mono.
Inbound messages are parsed into typed models here; anything malformed raises
`ClientMessageError` with a reason the gateway logs (and otherwise ignores).
Outbound messages are built by the functions at the end, one per type.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StrictInt, TypeAdapter, ValidationError, field_validator

from huxley_wire.codec import describe_validation

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
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ClientMessageError(f"not JSON: {exc}") from None
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


def hello(language: str | None, current_persona: str, available_personas: list[str]) -> Out:
    return {
        "type": "hello",
        "protocol": PROTOCOL_VERSION,
        "language": language,
        "current_persona": current_persona,
        "available_personas": available_personas,
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


def transcript(role: str, text: str) -> Out:
    return {"type": "transcript", "role": role, "text": text}


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


def session_deleted(session_id: int, deleted: bool) -> Out:
    return {"type": "session_deleted", "id": session_id, "deleted": deleted}
