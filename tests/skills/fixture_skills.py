"""Skills that misbehave on purpose, for the skill-host tests. They are
installed per test as a throwaway distribution (see `install_skills`), so the
host finds them through the real `huxley.skills` entry points."""

from __future__ import annotations

import asyncio
import json
import math
import struct
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from huxley_sdk import (
    AudioStream,
    CancelMedia,
    ClaimBusyError,
    ClaimEndReason,
    InjectPriority,
    InputClaim,
    PermanentFailure,
    PlaySound,
    SetVolume,
    SkillContext,
    ToolDefinition,
    ToolResult,
)


def tone(ms: int, hz: float = 440.0, rate: int = 24_000) -> bytes:
    samples = rate * ms // 1000
    return b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * hz * i / rate))) for i in range(samples)
    )


def tool(name: str) -> ToolDefinition:
    return ToolDefinition(name=name, description=f"test tool {name}", parameters={"type": "object"})


class EchoSkill:
    """Well-behaved tools, plus one that hangs and one that raises."""

    name = "echo"
    tools = [
        tool(n)
        for n in (
            "echo",
            "hang",
            "boom",
            "beep",
            "louder",
            "hush",
            "short_stream",
            "long_stream",
            "ask",
            "secret",
        )
    ]

    def __init__(self) -> None:
        self.ctx: SkillContext | None = None
        self.stream_ends: list[str] = []
        self.position = 0  # frames of the long stream played so far
        self.starts: list[int] = []  # the position each (re)start began at
        self.patience_hooks = 0
        self.reconfigured: list[str] = []

    async def setup(self, ctx: SkillContext) -> None:
        self.ctx = ctx
        await ctx.logger.ainfo("setup_done", language=ctx.language)

    async def reconfigure(self, ctx: SkillContext) -> None:
        self.ctx = ctx
        self.reconfigured.append(ctx.language)

    def prompt_context(self) -> str:
        return "Echo repeats what it is given."

    async def handle(self, tool_name: str, args: dict[str, Any]) -> ToolResult:
        assert self.ctx is not None
        await self.ctx.logger.ainfo("called", tool=tool_name)
        if tool_name == "echo":
            return ToolResult(output=json.dumps(args))
        if tool_name == "hang":
            await asyncio.Event().wait()
        if tool_name == "boom":
            raise RuntimeError("the echo skill exploded")
        if tool_name == "beep":
            return ToolResult(output="beep", side_effect=PlaySound(pcm=tone(20)))
        if tool_name == "louder":
            return ToolResult(output="ok", side_effect=SetVolume(level=int(args.get("level", 80))))
        if tool_name == "hush":
            return ToolResult(output="ok", side_effect=CancelMedia())
        if tool_name == "short_stream":
            return ToolResult(output="playing", side_effect=self._stream(int(args.get("ms", 200))))
        if tool_name == "long_stream":
            return ToolResult(
                output="playing", side_effect=self._long_stream(int(args.get("patience_ms", 60_000)))
            )
        if tool_name == "secret":
            await self.ctx.secrets.set("token", str(args.get("value", "s3cret")))
            return ToolResult(output=json.dumps({"keys": await self.ctx.secrets.keys()}))
        if tool_name == "ask":
            await self.ctx.inject_turn_and_wait(str(args.get("prompt", "hello")))
            return ToolResult(output="asked")
        raise AssertionError(tool_name)

    def _stream(self, ms: int) -> AudioStream:
        async def play() -> AsyncIterator[bytes]:
            try:
                yield tone(ms)
            finally:
                self.stream_ends.append("closed")

        return AudioStream(
            factory=play, on_complete_prompt="Say the stream ended.", completion_silence_ms=100
        )

    def _long_stream(self, patience_ms: int) -> AudioStream:
        """A "book": frame n is 960 bytes of the value n % 251, and each start
        resumes from the frame after the last one played (like a book that
        saves its position in its `finally`)."""

        async def play() -> AsyncIterator[bytes]:
            self.starts.append(self.position)
            try:
                while True:
                    yield bytes([self.position % 251]) * 960
                    self.position += 1
            finally:
                self.stream_ends.append(f"saved@{self.position}")

        async def on_patience_expired() -> None:
            self.patience_hooks += 1

        return AudioStream(
            factory=play,
            label="A long book",
            patience=timedelta(milliseconds=patience_ms),
            on_patience_expired=on_patience_expired,
        )


class BrokenSetupSkill:
    name = "brokensetup"
    tools = [tool("never_served")]

    async def setup(self, ctx: SkillContext) -> None:
        raise RuntimeError("setup cannot find its config")

    async def handle(self, tool_name: str, args: dict[str, Any]) -> ToolResult:
        return ToolResult(output="unreachable")


class CrashySkill:
    """A background task that crashes every time; budget of zero restarts."""

    name = "crashy"
    tools = [tool("crashy_ping")]

    def __init__(self) -> None:
        self.failures: list[PermanentFailure] = []

    async def setup(self, ctx: SkillContext) -> None:
        async def listen() -> None:
            raise ConnectionError("the doorbell wire is cut")

        async def gave_up(failure: PermanentFailure) -> None:
            self.failures.append(failure)

        ctx.background_task("listener", listen, max_restarts_per_hour=0, on_permanent_failure=gave_up)

    async def handle(self, tool_name: str, args: dict[str, Any]) -> ToolResult:
        return ToolResult(output=json.dumps({"failures": len(self.failures)}))


class ClashSkill:
    """Declares `echo`, which EchoSkill already declares."""

    name = "clash"
    tools = [tool("clash_only"), tool("echo")]

    async def handle(self, tool_name: str, args: dict[str, Any]) -> ToolResult:
        return ToolResult(output="clash")


class CallerSkill:
    """Takes the mic through start_input_claim (an intercom)."""

    name = "caller"
    tools = [tool("call"), tool("call_now"), tool("hang_up")]

    def __init__(self) -> None:
        self.ctx: SkillContext | None = None
        self.heard: list[bytes] = []
        self.ends: list[ClaimEndReason] = []

    async def setup(self, ctx: SkillContext) -> None:
        self.ctx = ctx

    async def handle(self, tool_name: str, args: dict[str, Any]) -> ToolResult:
        assert self.ctx is not None
        claim = InputClaim(on_mic_frame=self._heard, on_claim_end=self._ended, title="Intercom")
        if tool_name == "call":
            return ToolResult(output="calling", side_effect=claim)
        if tool_name == "call_now":
            try:
                self.handle_ = await self.ctx.start_input_claim(claim)
            except ClaimBusyError as exc:
                return ToolResult(output=json.dumps({"busy": str(exc)}))
            return ToolResult(output=json.dumps({"busy": None}))
        ended = await self.ctx.cancel_active_claim()
        return ToolResult(output=json.dumps({"ended": ended}))

    async def _heard(self, pcm: bytes) -> None:
        self.heard.append(pcm)

    async def _ended(self, reason: ClaimEndReason) -> None:
        self.ends.append(reason)


class PrioritySkill:
    name = "nagger"
    tools = [tool("nag")]

    def __init__(self) -> None:
        self.ctx: SkillContext | None = None

    async def setup(self, ctx: SkillContext) -> None:
        self.ctx = ctx

    async def handle(self, tool_name: str, args: dict[str, Any]) -> ToolResult:
        assert self.ctx is not None
        await self.ctx.inject_turn("Tell the user: nag", priority=InjectPriority.PREEMPT, dedup_key="nag")
        return ToolResult(output="nagged")


ENTRY_POINTS = {
    "echo": "EchoSkill",
    "brokensetup": "BrokenSetupSkill",
    "crashy": "CrashySkill",
    "clash": "ClashSkill",
    "caller": "CallerSkill",
    "nagger": "PrioritySkill",
}


def install_skills(target: Path) -> Path:
    """Write a distribution whose entry points name the skills above; put
    `target` on sys.path (or PYTHONPATH) to install it."""
    dist = target / "huxley_test_skills-0.0.0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: huxley-test-skills\nVersion: 0.0.0\n")
    lines = ["[huxley.skills]"] + [
        f"{name} = skills.fixture_skills:{cls}" for name, cls in ENTRY_POINTS.items()
    ]
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return target
