"""The websocket server: one `Conversation` per connection, responses
streamed as GA Realtime events, paced in (scaled) real time.

Clients connect to `ws://host:port/<anything>/realtime?model=...` with a
bearer token (any value: it is checked for presence, like a real key).
Plain HTTP on the same port:

  GET /health                      "ok"
  GET /control/drop                abort every live socket (no close frame)
  GET /control/fault?k=v...        fault for the next response (Step fields:
                                   drop_after_ms, delay_ms, hold, hold_after_ms,
                                   error_after_ms, malformed_arguments, speed)
  GET /control/reject_update?code=&message=
                                   answer the next session.update with an error
  GET /control/log                 the client events received (JSON; audio elided)

The /control/* endpoints answer 403 unless `http_controls=True`
(HUXLEY_SIM_CONTROLS=1).

Tests use the same controls in-process (`SimServer.drop_all`, `set_fault`,
`reject_next_update`, `wait_for`, `received`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from huxley_realtime_sim.controls import SimControls
from huxley_realtime_sim.conversation import BYTES_PER_MS, Conversation, Plan, new_id
from huxley_realtime_sim.rules import RuleBook
from huxley_realtime_sim.voice import ToneVoice, Voice, make_voice, silence, tone
from huxley_runtime.logging import get_logger

log = get_logger(component="sim")

ClientEventFilter = Callable[[dict[str, Any]], bool]


class _Died(Exception):
    """The response ended in a server error: no response.done."""


@dataclass
class SimConnection:
    id: str
    ws: ServerConnection
    conversation: Conversation
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    response: asyncio.Task[None] | None = None


def _elide_audio(event: dict[str, Any]) -> dict[str, Any]:
    if event.get("type") == "input_audio_buffer.append" and isinstance(event.get("audio"), str):
        return {**event, "audio": f"<{len(event['audio']) * 3 // 4} bytes>"}
    return event


class SimServer(SimControls):
    def __init__(
        self,
        book: RuleBook,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        voice: Voice | None = None,
        speed: float | None = None,
        http_controls: bool = False,
    ) -> None:
        self.book = book
        self.http_controls = http_controls
        self.host = host
        self._port = port
        self.voice = voice or make_voice(book.voice, book.espeak_voice)
        self.speed = book.speed if speed is None else speed
        self.connections: dict[str, SimConnection] = {}
        # every client event (audio elided), with "_conn" and "_at" (time.perf_counter() on arrival)
        self.received: list[dict[str, Any]] = []
        self.responses: list[Plan] = []  # every response planned, in order
        self.connects = 0
        self._changed = asyncio.Condition()
        self._server: Server | None = None
        self._fault: dict[str, Any] = {}
        self._rejection: tuple[str, str] | None = None

    # -- lifecycle ----------------------------------------------------------------
    async def start(self) -> SimServer:
        self._server = await serve(
            self._serve,
            self.host,
            self._port,
            process_request=self.control_http,
            max_size=16 * 1024 * 1024,
            compression=None,
        )
        sockets = list(self._server.sockets)
        self._port = sockets[0].getsockname()[1]
        for phrase in self.book.phrases():
            await self.voice.render(phrase)
        log.info(
            "sim_listening", url=self.url, voice=self.voice.name, speed=self.speed, rules=len(self.book.rules)
        )
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> SimServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """The websocket base URL for `AsyncOpenAI(websocket_base_url=...)`."""
        return f"ws://{self.host}:{self._port}/v1"

    # -- controls -------------------------------------------------------------------
    async def wait_for(
        self, match: str | ClientEventFilter, *, after: int = 0, timeout: float = 10.0
    ) -> dict[str, Any]:
        """The first client event (index >= `after`) of that type or passing
        that filter, waiting for it to arrive."""
        test: ClientEventFilter = (lambda e: e.get("type") == match) if isinstance(match, str) else match

        def found() -> dict[str, Any] | None:
            return next((e for e in self.received[after:] if test(e)), None)

        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: found() is not None)
        event = found()
        assert event is not None
        return event

    async def wait_connections(self, count: int, timeout: float = 10.0) -> None:
        """Wait until `count` sockets have connected in total."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: self.connects >= count)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- websocket side -------------------------------------------------------------
    async def _serve(self, ws: ServerConnection) -> None:
        query = dict(parse_qsl(urlsplit(ws.request.path if ws.request else "").query))
        conversation = Conversation(
            self.book, query.get("model", "gpt-realtime"), self._take_fault, self._take_rejection
        )
        conn = SimConnection(new_id("conn"), ws, conversation)
        self.connections[conn.id] = conn
        self.connects += 1
        log.info("sim_connected", conn=conn.id, model=query.get("model"))
        await self._notify()
        try:
            await self._send(conn, conn.conversation.session_created())
            async for raw in ws:
                await self._on_message(conn, raw)
        except ConnectionClosed:
            pass
        finally:
            if conn.response is not None:
                conn.response.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await conn.response
            self.connections.pop(conn.id, None)
            log.info("sim_disconnected", conn=conn.id)
            await self._notify()

    async def _send(self, conn: SimConnection, event: dict[str, Any]) -> None:
        await conn.ws.send(json.dumps(event))

    async def _on_message(self, conn: SimConnection, raw: str | bytes) -> None:
        try:
            parsed = json.loads(raw)
            record = _elide_audio(parsed) if isinstance(parsed, dict) else {"type": None, "raw": parsed}
        except (json.JSONDecodeError, UnicodeDecodeError):
            record = {"type": None, "raw": str(raw)[:200]}
        self.received.append({**record, "_conn": conn.id, "_at": time.perf_counter()})
        outcome = conn.conversation.handle(raw)
        for event in outcome.events:
            await self._send(conn, event)
        if outcome.cancel:
            conn.cancel.set()
        if outcome.start is not None:
            self.responses.append(outcome.start)
            conn.cancel = asyncio.Event()
            conn.response = asyncio.create_task(self._respond(conn, outcome.start))
        await self._notify()

    async def _pause(self, conn: SimConnection, seconds: float) -> bool:
        """Sleep, unless the response is cancelled first (then True)."""
        if seconds <= 0:
            return conn.cancel.is_set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await conn.cancel.wait()
        return conn.cancel.is_set()

    async def _audio_for(self, plan: Plan) -> bytes:
        step = plan.step
        pcm = b""
        if step.tone is not None:
            pcm += tone(step.tone.hz, step.tone.ms)
        elif plan.text:
            pcm += await self.voice.render(plan.text)
        return pcm + silence(step.silence_ms)

    async def _respond(self, conn: SimConnection, plan: Plan) -> None:
        conv = conn.conversation
        step = plan.step
        speed = step.speed if step.speed is not None else self.speed
        output: list[dict[str, Any]] = []
        audio_ms = 0.0
        said = ""
        status = "completed"
        try:
            await self._send(
                conn, conv.event("response.created", response=conv.response_object(plan, "in_progress", []))
            )
            cancelled = await self._pause(conn, step.delay_ms / 1000)
            if not cancelled and plan.message_item_id is not None:
                cancelled, audio_ms, said, message = await self._stream_message(
                    conn, plan, len(output), speed
                )
                output.append(message)
            elif step.drop_after_ms is not None:
                self._abort(conn)
                await asyncio.Event().wait()
            if not cancelled:
                for call in plan.calls:
                    output.append(await self._stream_call(conn, plan, call, len(output)))
                if step.hold:
                    await conn.cancel.wait()
                    cancelled = True
            if cancelled:
                status = "cancelled"
        except _Died:
            return
        finally:
            conv.response_active = False
        usage = conv.usage(plan, audio_ms, said)
        done = conv.event("response.done", response=conv.response_object(plan, status, output, usage))
        await self._send(conn, done)
        log.info("sim_response", conn=conn.id, rule=plan.rule, status=status, audio_ms=round(audio_ms))

    async def _stream_message(
        self, conn: SimConnection, plan: Plan, output_index: int, speed: float
    ) -> tuple[bool, float, str, dict[str, Any]]:
        """The assistant's spoken message; returns (cancelled, audio ms, transcript said, item)."""
        conv = conn.conversation
        item_id = plan.message_item_id
        assert item_id is not None
        common = {"response_id": plan.response_id, "item_id": item_id, "output_index": output_index}
        item: dict[str, Any] = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        previous = conv.items[-1]["id"] if conv.items else None
        conv.items.append(item)
        conv.audio_ms[item_id] = 0.0
        await self._send(
            conn,
            conv.event(
                "response.output_item.added",
                response_id=plan.response_id,
                output_index=output_index,
                item=dict(item),
            ),
        )
        await self._send(
            conn, conv.event("conversation.item.added", previous_item_id=previous, item=dict(item))
        )
        await self._send(
            conn,
            conv.event(
                "response.content_part.added",
                **common,
                content_index=0,
                part={"type": "audio", "transcript": ""},
            ),
        )
        pcm = await self._audio_for(plan)
        chunk_bytes = self.book.chunk_ms * BYTES_PER_MS
        chunks = [pcm[i : i + chunk_bytes] for i in range(0, len(pcm), chunk_bytes)]
        words = plan.text.split()
        spoken_words = 0
        sent_ms = 0.0
        drop_after = plan.step.drop_after_ms
        cancelled = False
        for index, chunk in enumerate(chunks):
            if drop_after is not None and sent_ms >= drop_after:
                self._abort(conn)
                await asyncio.Event().wait()  # the serving task cancels us
            if plan.step.error_after_ms is not None and sent_ms >= plan.step.error_after_ms:
                error = {
                    "type": "server_error",
                    "code": "server_error",
                    "message": "The server had an error.",
                }
                await self._send(conn, conv.event("error", error={**error, "param": None, "event_id": None}))
                raise _Died
            if plan.step.hold_after_ms is not None and sent_ms >= plan.step.hold_after_ms:
                await conn.cancel.wait()
                cancelled = True
                break
            due_words = math.ceil((index + 1) / len(chunks) * len(words))
            if due_words > spoken_words:
                delta = (" " if spoken_words else "") + " ".join(words[spoken_words:due_words])
                await self._send(
                    conn,
                    conv.event(
                        "response.output_audio_transcript.delta", **common, content_index=0, delta=delta
                    ),
                )
                spoken_words = due_words
            await self._send(
                conn,
                conv.event(
                    "response.output_audio.delta",
                    **common,
                    content_index=0,
                    delta=base64.b64encode(chunk).decode(),
                ),
            )
            chunk_ms = len(chunk) / BYTES_PER_MS
            sent_ms += chunk_ms
            conv.audio_ms[item_id] = sent_ms
            if await self._pause(conn, chunk_ms / 1000 / speed if speed else 0):
                cancelled = True
                break
            if not speed:
                await asyncio.sleep(0)  # let response.cancel in between chunks
        if drop_after is not None and not cancelled:  # the audio was shorter: drop at its end
            self._abort(conn)
            await asyncio.Event().wait()
        transcript = " ".join(words[:spoken_words])
        await self._send(conn, conv.event("response.output_audio.done", **common, content_index=0))
        await self._send(
            conn,
            conv.event(
                "response.output_audio_transcript.done", **common, content_index=0, transcript=transcript
            ),
        )
        part = {"type": "audio", "transcript": transcript}
        await self._send(conn, conv.event("response.content_part.done", **common, content_index=0, part=part))
        item["status"] = "incomplete" if cancelled else "completed"
        item["content"] = [{"type": "output_audio", "transcript": transcript}]
        await self._send(
            conn,
            conv.event(
                "response.output_item.done",
                response_id=plan.response_id,
                output_index=output_index,
                item=dict(item),
            ),
        )
        await self._send(
            conn, conv.event("conversation.item.done", previous_item_id=previous, item=dict(item))
        )
        return cancelled, sent_ms, transcript, dict(item)

    async def _stream_call(
        self, conn: SimConnection, plan: Plan, call: Any, output_index: int
    ) -> dict[str, Any]:
        conv = conn.conversation
        item: dict[str, Any] = {
            "id": call.item_id,
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "name": call.name,
            "call_id": call.call_id,
            "arguments": "",
        }
        previous = conv.items[-1]["id"] if conv.items else None
        conv.items.append(item)
        conv.open_calls[call.call_id] = call.name
        common = {"response_id": plan.response_id, "item_id": call.item_id, "output_index": output_index}
        await self._send(
            conn,
            conv.event(
                "response.output_item.added",
                response_id=plan.response_id,
                output_index=output_index,
                item=dict(item),
            ),
        )
        await self._send(
            conn, conv.event("conversation.item.added", previous_item_id=previous, item=dict(item))
        )
        await self._send(
            conn,
            conv.event(
                "response.function_call_arguments.delta", **common, call_id=call.call_id, delta=call.arguments
            ),
        )
        await self._send(
            conn,
            conv.event(
                "response.function_call_arguments.done",
                **common,
                call_id=call.call_id,
                name=call.name,
                arguments=call.arguments,
            ),
        )
        item |= {"status": "completed", "arguments": call.arguments}
        await self._send(
            conn,
            conv.event(
                "response.output_item.done",
                response_id=plan.response_id,
                output_index=output_index,
                item=dict(item),
            ),
        )
        await self._send(
            conn, conv.event("conversation.item.done", previous_item_id=previous, item=dict(item))
        )
        return dict(item)

    def _abort(self, conn: SimConnection) -> None:
        log.info("sim_fault_drop", conn=conn.id)
        if conn.ws.transport is not None:
            conn.ws.transport.abort()


__all__ = ["SimConnection", "SimServer", "ToneVoice"]
