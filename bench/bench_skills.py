"""Tool-call round trip: the bridge's side of skills.tool.<skill> to a skill
and back, through a real skill-host, next to the bare NATS request/reply
measured in the same run.

The tool is the published system skill's `get_current_time` (no I/O), so
the figure is the host's own cost: decode, dispatch, the skill, encode.
"""

from __future__ import annotations

from pathlib import Path

from bench.harness import BASELINE_REQUEST_REPLY, BenchEnv, Measurement, latency, time_many
from huxley_runtime.logging import configure_logging
from huxley_runtime.rpc import request_with_retry
from huxley_skill_host.service import SkillHostService
from huxley_skill_host.settings import SkillHostSettings
from huxley_wire.codec import encode
from huxley_wire.messages.skills import ToolCall
from huxley_wire.permissions import Role
from huxley_wire.subjects import Subjects

REPO = Path(__file__).resolve().parents[1]


async def run(env: BenchEnv) -> list[Measurement]:
    site = env.site()
    configure_logging("bench", site, level="warning")
    settings = SkillHostSettings(
        nats_url=env.nats_url,
        site=site,
        skills="system",
        personas_dir=REPO / "personas",
        data_dir=env.workdir / "skills-data",
        schema_wait_s=0,
        _env_file=None,  # type: ignore[call-arg]
    )
    identity = {"skills": ("system",), "persona": str(settings.persona)}
    settings = settings.model_copy(update=env.auth(site).fields(Role.SKILL, **identity))
    host = SkillHostService(settings)
    await host.start()
    client = await env.connect(site)
    subject = Subjects(site).skill_tool("system")
    call = encode(ToolCall(call_id="c-bench", tool="get_current_time", args={}, turn_id="t-bench"))
    try:
        # Answers `unavailable` until the skill is set up; the retry waits that out.
        warmup = ToolCall(call_id="c", tool="get_current_time", args={})
        await request_with_retry(client, subject, warmup, deadline_s=30)
        samples = await time_many(lambda: client.request(subject, call, timeout=5), 2000)
    finally:
        await client.close()
        await host.stop()
    return [
        latency(
            "skills.tool_call_round_trip",
            samples,
            baseline=BASELINE_REQUEST_REPLY,
            note="system.get_current_time over skills.tool.system through a real skill-host",
        )
    ]
