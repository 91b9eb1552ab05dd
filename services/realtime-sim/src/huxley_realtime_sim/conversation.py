"""One simulated Realtime session: the conversation state and every event it
sends, without sockets or clocks (the server streams responses and paces
them).

Field names and shapes follow the GA Realtime protocol as the `openai`
package types it (openai.types.realtime): what a client sends is validated
the way the real service does for the parts we support, and every bad input
gets an `error` event naming the client event, never a dropped socket.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from huxley_realtime_sim.markers import detect_markers
from huxley_realtime_sim.rules import (
    Match,
    RuleBook,
    Step,
    match_marker,
    match_text,
    parse_output,
    render,
    render_arguments,
)
from huxley_realtime_sim.usage import TokenMeter, context_text, text_tokens

BYTES_PER_MS = 48  # PCM16 24 kHz mono
MIN_COMMIT_MS = 100
PCM_FORMAT = {"type": "audio/pcm", "rate": 24000}
CLIENT_EVENTS = (
    "session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "conversation.item.create",
    "conversation.item.truncate",
    "conversation.item.delete",
    "conversation.item.retrieve",
    "response.create",
    "response.cancel",
    "output_audio_buffer.clear",
)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


class ClientError(Exception):
    def __init__(self, message: str, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message, self.code, self.param = message, code, param


@dataclass
class ToolCall:
    item_id: str
    call_id: str
    name: str
    arguments: str


@dataclass
class Plan:
    """What one response will do."""

    response_id: str
    step: Step
    text: str  # the rendered `say`, "" for none
    calls: list[ToolCall]
    message_item_id: str | None
    rule: str  # rule name, "default" or "follow_up", for logs and tests


@dataclass
class Outcome:
    """What the server does after a client event."""

    events: list[dict[str, Any]] = field(default_factory=list)
    start: Plan | None = None
    cancel: bool = False


@dataclass
class _Continuation:
    match: Match
    next_step: int


class Conversation:
    def __init__(
        self,
        book: RuleBook,
        model: str = "gpt-realtime",
        take_fault: Callable[[], dict[str, Any]] | None = None,
        take_rejection: Callable[[], tuple[str, str] | None] | None = None,
    ) -> None:
        self.book = book
        self._take_fault = take_fault or dict
        self._take_rejection = take_rejection or (lambda: None)  # (code, message) for a session.update
        self.session: dict[str, Any] = {
            "type": "realtime",
            "object": "realtime.session",
            "id": new_id("sess"),
            "model": model,
            "output_modalities": ["audio"],
            "instructions": "You are the huxley-realtime-sim scripted model.",
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
            "tracing": None,
            "prompt": None,
            "expires_at": int(time.time()) + 3600,
            "audio": {
                "input": {
                    "format": dict(PCM_FORMAT),
                    "transcription": None,
                    "noise_reduction": None,
                    "turn_detection": {"type": "server_vad", "threshold": 0.5, "silence_duration_ms": 500},
                },
                "output": {"format": dict(PCM_FORMAT), "voice": "alloy", "speed": 1.0},
            },
        }
        self.items: list[dict[str, Any]] = []
        self.audio_ms: dict[str, float] = {}  # assistant item -> audio produced
        self.input_buffer = bytearray()
        self.input_audio_ms_total = 0.0
        self.fresh_input: Match | None = None  # user input not yet answered
        self.continuation: _Continuation | None = None
        self.last_output: Any = None
        self.outputs_since_response = 0
        self.open_calls: dict[str, str] = {}  # call_id -> tool name, awaiting output
        self.response_active = False
        self.meter = TokenMeter()

    # -- small helpers ------------------------------------------------------------
    @staticmethod
    def event(type_: str, **fields: Any) -> dict[str, Any]:
        return {"type": type_, "event_id": new_id("event"), **fields}

    def error(
        self, message: str, code: str, param: str | None = None, client_event_id: Any = None
    ) -> dict[str, Any]:
        return self.event(
            "error",
            error={
                "type": "invalid_request_error",
                "code": code,
                "message": message,
                "param": param,
                "event_id": client_event_id if isinstance(client_event_id, str) else None,
            },
        )

    @property
    def declared_tools(self) -> set[str]:
        tools = self.session.get("tools") or []
        return {t["name"] for t in tools if isinstance(t, dict) and isinstance(t.get("name"), str)}

    def _previous_item_id(self) -> str | None:
        return self.items[-1]["id"] if self.items else None

    def _add_item(self, item: dict[str, Any]) -> list[dict[str, Any]]:
        previous = self._previous_item_id()
        self.items.append(item)
        return [
            self.event("conversation.item.added", previous_item_id=previous, item=copy.deepcopy(item)),
            self.event("conversation.item.done", previous_item_id=previous, item=copy.deepcopy(item)),
        ]

    def _find(self, item_id: Any) -> dict[str, Any] | None:
        return next((item for item in self.items if item["id"] == item_id), None)

    def session_created(self) -> dict[str, Any]:
        return self.event("session.created", session=copy.deepcopy(self.session))

    # -- client events ------------------------------------------------------------
    def handle(self, raw: str | bytes) -> Outcome:
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return Outcome([self.error(f"The event is not valid JSON: {exc}", "invalid_json")])
        if not isinstance(data, dict):
            return Outcome([self.error("An event must be a JSON object.", "invalid_event")])
        kind = data.get("type")
        client_event_id = data.get("event_id")
        if not isinstance(kind, str):
            return Outcome(
                [self.error("Missing the 'type' field.", "invalid_event", "type", client_event_id)]
            )
        if kind not in CLIENT_EVENTS:
            supported = ", ".join(f"'{t}'" for t in CLIENT_EVENTS)
            message = f"Invalid value: '{kind}'. Supported values are: {supported}."
            return Outcome([self.error(message, "invalid_value", "type", client_event_id)])
        handler = getattr(self, "_on_" + kind.replace(".", "_"))
        if kind == "session.update" and (rejection := self._take_rejection()) is not None:
            return Outcome([self.error(rejection[1], rejection[0], "session", client_event_id)])
        try:
            outcome: Outcome = handler(data)
        except ClientError as exc:
            return Outcome([self.error(exc.message, exc.code, exc.param, client_event_id)])
        return outcome

    def _on_session_update(self, data: dict[str, Any]) -> Outcome:
        update = data.get("session")
        if not isinstance(update, dict):
            raise ClientError(
                "Missing required parameter: 'session'.", "missing_required_parameter", "session"
            )
        if update.get("type") != "realtime":
            raise ClientError(
                "Missing required parameter: 'session.type' (it must be 'realtime').",
                "missing_required_parameter",
                "session.type",
            )
        audio = update.get("audio") or {}
        for side in ("input", "output"):
            fmt = (audio.get(side) or {}).get("format")
            if fmt is not None and (fmt.get("type") != "audio/pcm" or fmt.get("rate", 24000) != 24000):
                raise ClientError(
                    f"The simulator only speaks audio/pcm at 24000 Hz, not {fmt}.",
                    "invalid_value",
                    f"session.audio.{side}.format",
                )
        modalities = update.get("output_modalities")
        if modalities is not None and modalities != ["audio"]:
            raise ClientError(
                "The simulator only answers with audio.", "invalid_value", "session.output_modalities"
            )
        tools = update.get("tools")
        if tools is not None and (
            not isinstance(tools, list) or not all(isinstance(t, dict) and t.get("name") for t in tools)
        ):
            raise ClientError("Every tool needs a name.", "invalid_value", "session.tools")
        _merge(self.session, update)
        return Outcome([self.event("session.updated", session=copy.deepcopy(self.session))])

    def _on_input_audio_buffer_append(self, data: dict[str, Any]) -> Outcome:
        audio = data.get("audio")
        if not isinstance(audio, str):
            raise ClientError("Missing required parameter: 'audio'.", "missing_required_parameter", "audio")
        try:
            pcm = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            raise ClientError("The audio is not valid base64.", "invalid_value", "audio") from None
        self.input_buffer += pcm
        return Outcome()

    def _on_input_audio_buffer_clear(self, data: dict[str, Any]) -> Outcome:
        self.input_buffer.clear()
        return Outcome([self.event("input_audio_buffer.cleared")])

    def _on_input_audio_buffer_commit(self, data: dict[str, Any]) -> Outcome:
        ms = len(self.input_buffer) / BYTES_PER_MS
        if ms < MIN_COMMIT_MS:
            raise ClientError(
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"{MIN_COMMIT_MS}ms of audio, but buffer only has {ms:.2f}ms of audio.",
                "input_audio_buffer_commit_empty",
            )
        pcm = bytes(self.input_buffer)
        self.input_buffer.clear()
        self.input_audio_ms_total += ms
        keys = detect_markers(pcm)
        match = match_marker(self.book, keys, self.declared_tools)
        self.fresh_input = match
        transcript = match.values.get("input", "")
        item_id = new_id("item")
        previous = self._previous_item_id()
        item: dict[str, Any] = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        events = [self.event("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id)]
        events += self._add_item(item)
        if self.session["audio"]["input"].get("transcription"):
            item["content"][0]["transcript"] = transcript
            events.append(
                self.event(
                    "conversation.item.input_audio_transcription.completed",
                    item_id=item_id,
                    content_index=0,
                    transcript=transcript,
                    usage={
                        "type": "tokens",
                        "input_tokens": int(ms / 100),
                        "output_tokens": text_tokens(transcript),
                        "total_tokens": int(ms / 100) + text_tokens(transcript),
                    },
                )
            )
        return Outcome(events)

    def _on_conversation_item_create(self, data: dict[str, Any]) -> Outcome:
        item = data.get("item")
        if not isinstance(item, dict):
            raise ClientError("Missing required parameter: 'item'.", "missing_required_parameter", "item")
        kind = item.get("type")
        stored: dict[str, Any] = {"id": item.get("id") or new_id("item"), "object": "realtime.item"}
        if kind == "message":
            role = item.get("role")
            content = item.get("content")
            if role not in ("user", "system", "assistant") or not isinstance(content, list):
                raise ClientError("A message needs a role and a content list.", "invalid_value", "item")
            texts = [c["text"] for c in content if isinstance(c, dict) and isinstance(c.get("text"), str)]
            stored |= {"type": "message", "role": role, "status": "completed", "content": content}
            if role == "user":
                self.fresh_input = match_text(self.book, " ".join(texts), self.declared_tools)
        elif kind == "function_call_output":
            call_id, output = item.get("call_id"), item.get("output")
            if not isinstance(call_id, str) or not isinstance(output, str):
                raise ClientError("function_call_output needs call_id and output.", "invalid_value", "item")
            if call_id not in self.open_calls and not any(
                i.get("call_id") == call_id for i in self.items if i.get("type") == "function_call"
            ):
                raise ClientError(
                    f"Tool call ID '{call_id}' not found in conversation.", "invalid_value", "item.call_id"
                )
            self.open_calls.pop(call_id, None)
            self.last_output = parse_output(output)
            self.outputs_since_response += 1
            stored |= {"type": "function_call_output", "call_id": call_id, "output": output}
        else:
            raise ClientError(f"Unsupported item type {kind!r}.", "invalid_value", "item.type")
        if self._find(stored["id"]) is not None:
            raise ClientError(f"Item '{stored['id']}' already exists.", "invalid_value", "item.id")
        return Outcome(self._add_item(stored))

    def _on_conversation_item_truncate(self, data: dict[str, Any]) -> Outcome:
        item_id, content_index, end_ms = (
            data.get("item_id"),
            data.get("content_index"),
            data.get("audio_end_ms"),
        )
        item = self._find(item_id)
        if item is None:
            raise ClientError(f"Item '{item_id}' not found.", "item_not_found", "item_id")
        if item.get("role") != "assistant":
            raise ClientError("Only assistant messages can be truncated.", "invalid_value", "item_id")
        if content_index != 0 or not isinstance(end_ms, int) or end_ms < 0:
            raise ClientError(
                "content_index must be 0 and audio_end_ms >= 0.", "invalid_value", "audio_end_ms"
            )
        duration = self.audio_ms.get(item["id"], 0.0)
        if end_ms > duration + 0.5:
            raise ClientError(
                f"audio_end_ms ({end_ms}) is longer than the audio ({duration:.0f}ms).",
                "invalid_value",
                "audio_end_ms",
            )
        self.audio_ms[item["id"]] = float(end_ms)
        for part in item.get("content", []):
            part["transcript"] = ""  # the server drops the transcript of truncated audio
        event = self.event(
            "conversation.item.truncated", item_id=item["id"], content_index=0, audio_end_ms=end_ms
        )
        return Outcome([event])

    def _on_conversation_item_delete(self, data: dict[str, Any]) -> Outcome:
        item = self._find(data.get("item_id"))
        if item is None:
            raise ClientError(f"Item '{data.get('item_id')}' not found.", "item_not_found", "item_id")
        self.items.remove(item)
        return Outcome([self.event("conversation.item.deleted", item_id=item["id"])])

    def _on_conversation_item_retrieve(self, data: dict[str, Any]) -> Outcome:
        item = self._find(data.get("item_id"))
        if item is None:
            raise ClientError(f"Item '{data.get('item_id')}' not found.", "item_not_found", "item_id")
        return Outcome([self.event("conversation.item.retrieved", item=copy.deepcopy(item))])

    def _on_output_audio_buffer_clear(self, data: dict[str, Any]) -> Outcome:
        raise ClientError("output_audio_buffer.clear is for WebRTC/SIP only.", "invalid_value", "type")

    def _on_response_cancel(self, data: dict[str, Any]) -> Outcome:
        if not self.response_active:
            raise ClientError("Cancellation failed: no active response found", "response_cancel_not_active")
        return Outcome(cancel=True)

    def _on_response_create(self, data: dict[str, Any]) -> Outcome:
        if self.response_active:
            raise ClientError(
                "Conversation already has an active response in progress.",
                "conversation_already_has_active_response",
            )
        self.response_active = True
        return Outcome(start=self.plan())

    # -- responses ----------------------------------------------------------------
    def plan(self) -> Plan:
        """Choose what the next response does: answer fresh input with its
        rule's first step, else continue the rule after tool outputs, else the
        book's follow-up (after outputs) or default."""
        values: dict[str, Any]
        if self.fresh_input is not None:
            match, self.fresh_input = self.fresh_input, None
            rule_name = match.rule.name if match.rule else "default"
            step = match.rule.steps[0] if match.rule else self.book.default
            values = match.values
            more = match.rule is not None and len(match.rule.steps) > 1
            self.continuation = _Continuation(match, 1) if more else None
        elif self.continuation is not None and self.outputs_since_response:
            match = self.continuation.match
            assert match.rule is not None
            step = match.rule.steps[self.continuation.next_step]
            rule_name, values = match.rule.name, match.values
            following = self.continuation.next_step + 1
            self.continuation = _Continuation(match, following) if following < len(match.rule.steps) else None
        else:
            self.continuation = None
            after_tools = self.outputs_since_response > 0
            step = self.book.follow_up if after_tools else self.book.default
            rule_name = "follow_up" if after_tools else "default"
            values = {}
        values = {**values, "output": self.last_output}
        self.outputs_since_response = 0
        fault = self._take_fault()  # test faults, merged into this response's step
        if fault:
            step = step.model_copy(update=fault)
        allowed = self.declared_tools
        calls = []
        for spec in step.tools:
            if spec.name not in allowed and rule_name in ("default", "follow_up"):
                continue
            arguments = render_arguments(spec.arguments, values)
            if step.malformed_arguments:
                arguments = arguments[: max(1, len(arguments) // 2)] + '"unterminated'
            call = ToolCall(new_id("item"), new_id("call"), spec.name, arguments)
            calls.append(call)
        text = render(step.say, values) if step.say else ""
        return Plan(
            response_id=new_id("resp"),
            step=step,
            text=text,
            calls=calls,
            message_item_id=new_id("item") if step.has_audio or text else None,
            rule=rule_name,
        )

    def response_object(
        self, plan: Plan, status: str, output: list[dict[str, Any]], usage: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        details = None
        if status == "cancelled":
            details = {"type": "cancelled", "reason": "client_cancelled"}
        return {
            "object": "realtime.response",
            "id": plan.response_id,
            "status": status,
            "status_details": details,
            "output": output,
            "conversation_id": "conv_" + self.session["id"].removeprefix("sess_"),
            "output_modalities": ["audio"],
            "max_output_tokens": "inf",
            "audio": {
                "output": {"format": dict(PCM_FORMAT), "voice": self.session["audio"]["output"]["voice"]}
            },
            "usage": usage,
            "metadata": None,
        }

    def usage(self, plan: Plan, audio_ms: float, transcript: str) -> dict[str, Any]:
        """The usage of a response that produced `audio_ms` of speech (`usage.py`)."""
        return self.meter.usage(
            context=context_text(self.session, self.items),
            user_audio_ms=self.input_audio_ms_total,
            earlier_assistant_ms=sum(self.audio_ms.values()) - audio_ms,
            output_texts=[transcript, *(c.arguments for c in plan.calls)],
            output_audio_ms=audio_ms,
        )


def _merge(target: dict[str, Any], update: dict[str, Any]) -> None:
    """Deep-merge a session.update into the session (lists and nulls replace)."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
