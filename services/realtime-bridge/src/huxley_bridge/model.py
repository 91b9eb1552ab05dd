"""A thin wrapper around the `openai` client's Realtime connection: connect,
send client events, and read server events translated into the
coordinator's vocabulary (huxley_bridge.events).

Reconnecting is the lifecycle's job (its own backoff), so the client's
built-in reconnection stays off: a dropped socket ends `events()`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from openai import AsyncOpenAI, OpenAIError
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from huxley_bridge import bench_tap
from huxley_bridge import events as e
from huxley_bridge.settings import BridgeSettings
from huxley_runtime.bench_stamps import StampFile
from huxley_runtime.logging import get_logger

log = get_logger(component="model")

OFFLINE_MESSAGE = (
    "OPENAI_API_KEY is not set, so the bridge runs offline: no voice. Set OPENAI_API_KEY for the real "
    "model, or HUXLEY_REALTIME_URL to use huxley-realtime-sim (`huxley up` does that for you)."
)
SIM_PLACEHOLDER_KEY = "huxley-offline-sim"  # the simulator wants a bearer token, any value

ModelEvent = (
    e.ResponseCreated
    | e.AudioDelta
    | e.AssistantTranscript
    | e.AssistantTranscriptDelta
    | e.UserTranscript
    | e.FunctionCall
    | e.ResponseDone
    | e.ModelError
)


class ModelUnavailable(Exception):
    """The socket could not be opened (or the session never started)."""


@dataclass(frozen=True)
class ModelEndpoint:
    model: str
    api_key: str | None = None
    websocket_base_url: str | None = None  # None: OpenAI's own
    offline_message: str | None = None  # set when there is nothing to connect to

    @classmethod
    def from_settings(cls, settings: BridgeSettings) -> ModelEndpoint:
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        url = settings.realtime_url or (None if key else settings.realtime_offline_url) or None
        if not key and not url:
            return cls(settings.realtime_model, offline_message=OFFLINE_MESSAGE)
        return cls(settings.realtime_model, key or SIM_PLACEHOLDER_KEY, url)

    @property
    def simulated(self) -> bool:
        """No key: whatever answers is not OpenAI (huxley-realtime-sim)."""
        return self.api_key == SIM_PLACEHOLDER_KEY

    @property
    def where(self) -> str:
        return self.websocket_base_url or "OpenAI"


def _get(obj: Any, name: str, default: Any = None) -> Any:
    value = getattr(obj, name, default)
    return default if value is None else value


AUDIO_DELTA = "response.output_audio.delta"


@dataclass(frozen=True, slots=True)
class AudioDeltaEvent:
    """The fields of a response.output_audio.delta the bridge reads."""

    response_id: str
    item_id: str
    delta: str
    type: str = AUDIO_DELTA


def fast_parser(
    parse: Callable[[str | bytes], Any], stamps: StampFile | None = None
) -> Callable[[str | bytes], Any]:
    """The openai client's `parse_event`, except for audio deltas (10 a second
    or more while the model speaks): those skip its walk through the pydantic
    union of every server event (~60 us each, before the audio can go on)."""

    def parse_event(data: str | bytes) -> Any:
        taken = time.monotonic_ns() if stamps is not None else 0
        event = json.loads(data)
        if isinstance(event, dict) and event.get("type") == AUDIO_DELTA:
            response_id, item_id, delta = event.get("response_id"), event.get("item_id"), event.get("delta")
            if isinstance(response_id, str) and isinstance(item_id, str) and isinstance(delta, str):
                if stamps is not None:
                    bench_tap.delta(stamps, taken, delta)
                return AudioDeltaEvent(response_id, item_id, delta)
        return parse(data)  # and a delta missing a field, as the client would make it

    return parse_event


def translate(event: Any) -> ModelEvent | None:
    """One server event (as the openai client parsed it) in the coordinator's
    terms, or None for events the bridge does not act on."""
    kind = getattr(event, "type", None)
    if kind == "response.output_audio.delta":
        return e.AudioDelta(event.response_id, event.item_id, base64.b64decode(event.delta))
    if kind == "response.created":
        return e.ResponseCreated(_get(event.response, "id", ""))
    if kind == "response.function_call_arguments.done":
        return e.FunctionCall(
            event.response_id, event.item_id, event.call_id, event.name, _get(event, "arguments", "")
        )
    if kind == "response.done":
        response = event.response
        usage = (
            response.usage.model_dump(mode="json", exclude_none=True) if response.usage is not None else None
        )
        return e.ResponseDone(_get(response, "id", ""), _get(response, "status", "completed"), usage)
    if kind == "response.output_audio_transcript.done":
        return e.AssistantTranscript(event.response_id, event.item_id, _get(event, "transcript", ""))
    if kind == "response.output_audio_transcript.delta":
        return e.AssistantTranscriptDelta(event.response_id, event.item_id, _get(event, "delta", ""))
    if kind == "conversation.item.input_audio_transcription.completed":
        return e.UserTranscript(event.item_id, _get(event, "transcript", ""))
    if kind == "error":
        error = event.error
        return e.ModelError(
            _get(error, "message", "unknown error"),
            _get(error, "code"),
            _get(error, "event_id"),
            _get(error, "type"),
        )
    return None


class ModelSession:
    """One Realtime socket at a time."""

    def __init__(self, endpoint: ModelEndpoint, connect_timeout_s: float = 10.0) -> None:
        if endpoint.offline_message:
            raise ModelUnavailable(endpoint.offline_message)
        self.endpoint = endpoint
        self.connect_timeout_s = connect_timeout_s
        self._client = AsyncOpenAI(api_key=endpoint.api_key, websocket_base_url=endpoint.websocket_base_url)
        self._conn: Any = None
        self.session: Any = None  # the session.created payload
        self._stamps = bench_tap.stamps_from_env()

    @property
    def connected(self) -> bool:
        return self._conn is not None

    async def connect(self) -> None:
        """Open the socket and wait for session.created."""
        manager = self._client.realtime.connect(model=self.endpoint.model)
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                conn = await manager.enter()
                try:
                    first: Any = await conn.recv()
                except BaseException:
                    await conn.close()
                    raise
        except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake, InvalidURI, OpenAIError) as exc:
            raise ModelUnavailable(f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
        if getattr(first, "type", None) != "session.created":
            await conn.close()
            raise ModelUnavailable(f"expected session.created first, got {getattr(first, 'type', first)!r}")
        # conn.recv() parses every event with it.
        conn.parse_event = fast_parser(conn.parse_event, self._stamps)  # type: ignore[method-assign,assignment]
        self._conn, self.session = conn, first.session
        log.info("model_connected", where=self.endpoint.where, model=self.endpoint.model)

    async def send(self, event: dict[str, Any]) -> bool:
        """Send one client event; False if the socket is gone.

        The event goes out as JSON through the client's `send_raw`: its `send`
        first walks a dict through the TypedDict union of every client event
        (100-200 us each, 50 a second while the mic is open), which changes
        nothing for events already in the API's own names, as ours are
        (tests/bridge/test_model_session checks each kind the bridge sends)."""
        if self._conn is None:
            return False
        try:
            await self._conn.send_raw(json.dumps(event))
        except (ConnectionClosed, OpenAIError, OSError) as exc:
            log.warning("model_send_failed", type=event.get("type"), error=str(exc))
            return False
        return True

    async def append_audio(self, pcm: bytes) -> bool:
        sent = await self.send({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()})
        if sent and self._stamps is not None:
            self._stamps.frames("append", time.monotonic_ns(), pcm)  # an append may join frames (mic_run)
        return sent

    async def events(self) -> AsyncIterator[ModelEvent]:
        """Translated server events until the socket closes (then it returns)."""
        conn = self._conn
        if conn is None:
            return
        try:
            async for raw in conn:
                try:
                    event = translate(raw)
                except (AttributeError, TypeError, ValueError) as exc:
                    log.warning("model_event_unreadable", type=getattr(raw, "type", None), error=str(exc))
                    continue
                if event is not None:
                    yield event
        except (ConnectionClosed, OpenAIError, OSError) as exc:
            log.warning("model_socket_closed", error=str(exc) or type(exc).__name__)
        finally:
            if self._conn is conn:
                self._conn = None

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except (ConnectionClosed, OpenAIError, OSError):
                pass
