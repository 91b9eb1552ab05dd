"""The end-to-end tests' own skill, installed per test as a throwaway
distribution so the skill-host finds it through its `huxley.skills` entry
point, like any published skill.

`intercom` makes an input claim whose speaker plays a known tone (so the WAV
shows exactly when the call was heard), and has a tool that never returns
(the bridge's tool timeout) and one that answers plainly.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np

from huxley_sdk import ClaimEndReason, InputClaim, SkillContext, ToolDefinition, ToolResult

INTERCOM_HZ = 1500.0  # above every word of the simulator's tone voice (220-660 Hz)
SAMPLE_RATE = 24_000


def intercom_pcm(ms: int = 1000) -> bytes:
    """The far end of the call: a steady tone whose period (16 samples) divides
    a 20 ms frame, so every frame of it is identical and findable."""
    t = np.arange(SAMPLE_RATE * ms // 1000) / SAMPLE_RATE
    return (0.3 * np.sin(2 * math.pi * INTERCOM_HZ * t) * 32767).astype("<i2").tobytes()


class IntercomSkill:
    name = "intercom"
    tools = [
        ToolDefinition(
            name="open_intercom", description="Call the front door", parameters={"type": "object"}
        ),
        ToolDefinition(name="wait_forever", description="Never answers", parameters={"type": "object"}),
        ToolDefinition(name="echo_args", description="Returns its arguments", parameters={"type": "object"}),
    ]

    def __init__(self) -> None:
        self.ctx: SkillContext | None = None

    async def setup(self, ctx: SkillContext) -> None:
        self.ctx = ctx

    async def handle(self, tool_name: str, args: dict[str, Any]) -> ToolResult:
        assert self.ctx is not None
        if tool_name == "open_intercom":
            claim = InputClaim(
                on_mic_frame=self._heard,
                speaker_source=self._far_end(),
                on_claim_end=self._ended,
                title="Front door",
            )
            return ToolResult(output=json.dumps({"calling": "front door"}), side_effect=claim)
        if tool_name == "wait_forever":
            await asyncio.Event().wait()
        return ToolResult(output=json.dumps(args))

    async def _far_end(self) -> AsyncIterator[bytes]:
        second = intercom_pcm()
        while True:
            yield second

    async def _heard(self, pcm: bytes) -> None:
        pass

    async def _ended(self, reason: ClaimEndReason) -> None:
        assert self.ctx is not None
        # Durable, so the test reads the reason from storage.
        await self.ctx.storage.set_setting("claim_end", str(reason.value))
        await self.ctx.logger.ainfo("claim_ended", reason=str(reason.value))


def install(target: Path) -> Path:
    """A distribution whose entry point names IntercomSkill; put `target` on
    PYTHONPATH (with the tests directory) to install it."""
    dist = target / "huxley_e2e_skills-0.0.0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: huxley-e2e-skills\nVersion: 0.0.0\n")
    (dist / "entry_points.txt").write_text("[huxley.skills]\nintercom = e2e.e2e_skills:IntercomSkill\n")
    return target
