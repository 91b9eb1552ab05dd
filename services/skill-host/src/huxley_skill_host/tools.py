"""Serving one tool call: the skill's `handle` bounded by the tool timeout,
its failures as error replies, its side effect as the wire's (a stream or
claim is held in the core until focus starts it)."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import TYPE_CHECKING

from huxley_runtime.logging import bound
from huxley_sdk import AudioStream, CancelMedia, InputClaim, PlaySound, SetVolume, SideEffect, ToolResult
from huxley_skill_host.playback import describe
from huxley_skill_host.slot import SkillSlot
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages import focus as f
from huxley_wire.messages.skills import (
    AudioStreamEffect,
    CancelMediaEffect,
    InputClaimEffect,
    PlaySoundEffect,
    SetVolumeEffect,
    SideEffectWire,
    ToolCall,
    ToolReply,
)

if TYPE_CHECKING:
    from huxley_skill_host.service import SkillHostService


async def call_tool(host: SkillHostService, slot: SkillSlot, call: ToolCall) -> ToolReply:
    if not slot.serving or slot.skill is None:
        raise WireError(ErrorCode.UNAVAILABLE, f"skill {slot.name!r} is {slot.status}: {slot.error}")
    tools = slot.tool_names()
    if call.tool not in tools:
        raise WireError(
            ErrorCode.UNKNOWN_TOOL,
            f"skill {slot.name!r} has no tool {call.tool!r} (its tools: {', '.join(tools) or 'none'})",
        )
    slot.calls += 1
    timeout = host.settings.tool_timeout_s
    log = host.log
    with bound(turn=call.turn_id, skill=slot.name, call_id=call.call_id):
        # Eager: a tool that never waits (most answer from memory) is done
        # here, without a loop turn and asyncio.wait's set of callbacks.
        loop = asyncio.get_running_loop()  # Python 3.13.0 needs it passed for eager_start
        task = asyncio.Task(slot.skill.handle(call.tool, dict(call.args)), loop=loop, eager_start=True)
        try:
            done = {task} if task.done() else (await asyncio.wait({task}, timeout=timeout))[0]
        except asyncio.CancelledError:
            task.cancel()
            raise
        if not done:
            task.cancel()
            slot.timeouts += 1
            message = (
                f"tool {call.tool!r} of skill {slot.name!r} did not finish within {timeout:g} s; "
                "it was cancelled and the host keeps serving"
            )
            slot.degrade(message)
            log.error("tool_timeout", tool=call.tool, after_s=timeout)
            host.start_work(host.publish_manifest(), name="manifest")
            raise WireError(ErrorCode.TIMEOUT, message)
        if task.cancelled():
            slot.failures += 1
            raise WireError(ErrorCode.TOOL_FAILED, f"tool {call.tool!r} was cancelled")
        failure = task.exception()
        if failure is not None:
            slot.failures += 1
            slot.note(f"tool {call.tool!r} raised {describe(failure)}")
            log.error("tool_failed", tool=call.tool, error=describe(failure), exc_info=failure)
            raise WireError(ErrorCode.TOOL_FAILED, describe(failure))
        result = task.result()
        if not isinstance(result, ToolResult) or not isinstance(result.output, str):
            slot.failures += 1
            raise WireError(
                ErrorCode.TOOL_FAILED,
                f"tool {call.tool!r} returned {type(result).__name__}, not a ToolResult with str output",
            )
        effect = effect_to_wire(host, slot.name, result.side_effect)
        log.info("tool_called", tool=call.tool, side_effect=effect.kind if effect else None)
    return ToolReply(output=result.output, side_effect=effect, host=host.holder, skill=slot.name)


def effect_to_wire(host: SkillHostService, skill: str, effect: SideEffect | None) -> SideEffectWire | None:
    if effect is None:
        return None
    if isinstance(effect, AudioStream):
        held = host.core.hold(skill, effect, time.monotonic())
        return AudioStreamEffect(
            effect_id=held.effect_id,
            content_type=f.ContentType(effect.content_type.value),
            patience_ms=int(effect.effective_patience().total_seconds() * 1000),
            label=effect.label,
            preroll_ms=effect.preroll_ms,
            has_complete_prompt=bool(effect.on_complete_prompt),
        )
    if isinstance(effect, InputClaim):
        held = host.core.hold(skill, effect, time.monotonic())
        return InputClaimEffect(effect_id=held.effect_id, title=effect.title)
    if isinstance(effect, PlaySound):
        return PlaySoundEffect(pcm_b64=base64.b64encode(effect.pcm).decode("ascii"))
    if isinstance(effect, CancelMedia):
        return CancelMediaEffect()
    if isinstance(effect, SetVolume):
        return SetVolumeEffect(level=max(0, min(100, int(effect.level))))
    host.log.warning("side_effect_unknown", skill=skill, kind=getattr(effect, "kind", type(effect).__name__))
    return None
