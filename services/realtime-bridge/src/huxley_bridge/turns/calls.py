"""Tool calls and their side effects. Calls run one at a time in arrival
order, each with a timeout; the output goes back to the model first, then
the side effect: a stream or claim is held for the barrier (last one wins,
a claim beats a stream), CancelMedia and SetVolume act at once, PlaySound
is queued right after the follow-up request, anything else asks for a
follow-up. Errors become a model-facing output and the turn goes on.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Literal

from huxley_bridge import commands as c
from huxley_bridge import events as e
from huxley_bridge.effects import HeldEffect, hold
from huxley_bridge.turns.state import CoreState
from huxley_bridge.turns.turn import Call, Turn
from huxley_wire.errors import ErrorCode
from huxley_wire.messages.bridge import ToolCallEvent
from huxley_wire.messages.focus import Channel
from huxley_wire.messages.skills import (
    AudioStreamEffect,
    CancelMediaEffect,
    InputClaimEffect,
    PlaySoundEffect,
    SetVolumeEffect,
)


class Calls(CoreState):
    def _on_tools(self, ev: e.ToolsChanged) -> None:
        self.tools = dict(ev.tools)

    def _dispatch(self, t: Turn) -> None:
        """Start the next queued call, one at a time, in arrival order."""
        while t.call_running is None and t.calls:
            call = t.calls.popleft()
            try:
                args = json.loads(call.arguments) if call.arguments.strip() else {}
            except json.JSONDecodeError as exc:
                self._tool_error(t, call, "invalid_arguments", f"arguments are not valid JSON: {exc}")
                continue
            if not isinstance(args, dict):
                self._tool_error(t, call, "invalid_arguments", "arguments must be a JSON object")
                continue
            skill = self.tools.get(call.name)
            if skill is None:
                self._tool_error(
                    t, call, ErrorCode.UNKNOWN_TOOL.value, f"no skill offers the tool {call.name!r}"
                )
                continue
            t.call_running = call
            self._call_turn[call.call_id] = t.id
            self._emit(c.CallTool(call.call_id, skill, call.name, args, t.id, self.config.tool_timeout_s))

    def _output(self, call_id: str, output: str) -> None:
        self._send(
            {
                "type": "conversation.item.create",
                "item": {"type": "function_call_output", "call_id": call_id, "output": output},
            }
        )

    def _tool_error(self, t: Turn, call: Call, error: str, message: str) -> None:
        output = json.dumps({"error": error, "tool": call.name, "message": message})
        self._output(call.call_id, output)
        self._tool_call_event(t, call, output, error=error)
        t.follow_up = True

    def _tool_call_event(
        self,
        t: Turn,
        call: Call,
        output: str,
        *,
        action: str | None = None,
        skill: str | None = None,
        error: str | None = None,
    ) -> None:
        """bridge.event.tool_call, after the output went to the model (the
        client's dev panel shows it as `dev_event tool_call`)."""
        try:
            args = json.loads(call.arguments) if call.arguments.strip() else {}
        except json.JSONDecodeError:
            args = {}
        event = ToolCallEvent(
            name=call.name,
            args=args if isinstance(args, dict) else {},
            output=output,
            action=action,
            skill=skill or self.tools.get(call.name),
            call_id=call.call_id,
            turn_id=t.id,
            error=error,
        )
        self._publish("tool_call", event)

    def _tool_finished(self, call_id: str) -> tuple[Turn, Call] | None:
        turn_id = self._call_turn.pop(call_id, None)
        t = self._turns.get(turn_id) if turn_id else None
        if t is None or t.call_running is None or t.call_running.call_id != call_id:
            return None
        call, t.call_running = t.call_running, None
        return t, call

    def _continue_tools(self, t: Turn) -> None:
        if not t.live:
            self._forget(t)
            return
        self._dispatch(t)
        if t.call_running is None and t.done_waiting_tools:
            self._after_response(t)

    def _on_tool_done(self, ev: e.ToolDone) -> None:
        found = self._tool_finished(ev.call_id)
        if found is None:
            return
        t, call = found
        effect = ev.reply.side_effect
        if self.connected:
            self._output(call.call_id, ev.reply.output)  # the output goes back first
        action = effect.kind if effect is not None else None
        self._tool_call_event(t, call, ev.reply.output, action=action, skill=ev.reply.skill)
        if not t.live or t.broken:  # an effect of a dropped turn never runs
            if isinstance(effect, AudioStreamEffect | InputClaimEffect):
                reason: Literal["user_ptt", "error"] = "error" if t.broken else "user_ptt"
                self._emit(c.DiscardEffect(ev.reply.host, effect.effect_id, reason))
            self._after_dropped_call(t)
            return
        if isinstance(effect, AudioStreamEffect | InputClaimEffect):
            kept, dropped = hold(t.effect, HeldEffect(ev.reply.host, ev.reply.skill, effect))
            t.effect = kept
            if dropped is not None:
                self._emit(c.DiscardEffect(dropped.host, dropped.effect_id, "superseded"))
        elif isinstance(effect, CancelMediaEffect):
            self._emit(c.StopChannel(Channel.CONTENT))
            t.follow_up = True
        elif isinstance(effect, SetVolumeEffect):
            self._emit(c.SetVolume(effect.level))
            t.follow_up = True
        elif isinstance(effect, PlaySoundEffect):
            try:
                t.sounds.append(base64.b64decode(effect.pcm_b64, validate=True))
            except (binascii.Error, ValueError):
                self._status(f"{ev.reply.skill}: a sound that is not valid base64 was skipped")
            t.follow_up = True
        else:
            t.follow_up = True
        self._continue_tools(t)

    def _on_tool_failed(self, ev: e.ToolFailed) -> None:
        found = self._tool_finished(ev.call_id)
        if found is None:
            return
        t, call = found
        error = "tool_failed" if ev.code == ErrorCode.TOOL_FAILED.value else ev.code
        output = json.dumps({"error": error, "tool": call.name, "message": ev.message})
        if self.connected:
            self._output(call.call_id, output)
        self._tool_call_event(t, call, output, error=error)
        if t.live and not t.broken:
            t.follow_up = True
            self._continue_tools(t)
        else:
            self._after_dropped_call(t)

    def _after_dropped_call(self, t: Turn) -> None:
        if t.live and t.broken:
            self._finish(t)  # the session dropped while the tool ran: wind the turn up
        else:
            self._forget(t)
