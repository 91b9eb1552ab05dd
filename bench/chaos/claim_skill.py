"""A tiny skill for the chaos run: one tool that opens an input claim (an
intercom call) whose speaker plays a steady tone until the user presses."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np

from huxley_sdk import ClaimEndReason, InputClaim, SkillContext, ToolDefinition, ToolResult

SAMPLE_RATE = 24_000


class ChaosClaimSkill:
    name = "chaosclaim"
    tools = [ToolDefinition(name="open_intercom", description="Call the door", parameters={"type": "object"})]

    def __init__(self) -> None:
        self.ctx: SkillContext | None = None

    async def setup(self, ctx: SkillContext) -> None:
        self.ctx = ctx

    async def handle(self, tool_name: str, args: dict[str, Any]) -> ToolResult:
        claim = InputClaim(
            on_mic_frame=self._heard, speaker_source=self._far_end(), on_claim_end=self._ended, title="Door"
        )
        return ToolResult(output=json.dumps({"calling": "door"}), side_effect=claim)

    async def _far_end(self) -> AsyncIterator[bytes]:
        t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
        second = (0.2 * np.sin(2 * math.pi * 1500.0 * t) * 32767).astype("<i2").tobytes()
        while True:
            yield second

    async def _heard(self, pcm: bytes) -> None:
        pass

    async def _ended(self, reason: ClaimEndReason) -> None:
        assert self.ctx is not None
        await self.ctx.storage.set_setting("claim_end", str(reason.value))


def install(target: Path) -> Path:
    """A distribution whose entry point names ChaosClaimSkill; put `target` on
    PYTHONPATH (with the repository root) so the skill-host finds it."""
    dist = target / "huxley_chaos_skills-0.0.0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: huxley-chaos-skills\nVersion: 0.0.0\n")
    (dist / "entry_points.txt").write_text(
        "[huxley.skills]\nchaosclaim = bench.chaos.claim_skill:ChaosClaimSkill\n"
    )
    return target
