"""Skill-host settings (HUXLEY_ environment variables, see HuxleySettings)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from huxley_runtime.settings import HuxleySettings
from huxley_wire.messages.skills import TOOL_TIMEOUT_S


class SkillHostSettings(HuxleySettings):
    # Comma-separated skill names (entry points of `huxley.skills`) this host
    # runs; empty means every skill of the persona. `--skills` sets it.
    skills: str = ""
    tool_timeout_s: float = Field(default=TOOL_TIMEOUT_S, gt=0)
    setup_timeout_s: float = Field(default=60.0, gt=0)
    teardown_timeout_s: float = Field(default=5.0, gt=0)
    # The bridge forgets a host silent for 35 s: three periods fit in it.
    announce_every_s: float = Field(default=15.0, gt=0)
    # How long a skill's storage call retries while storage is unreachable
    # before the skill sees `unavailable` (a setup that hits it is retried).
    storage_retry_s: float = Field(default=30.0, gt=0)
    # How long setup waits for storage to read the skill's recorded data
    # schema version; past it setup goes ahead and the check runs later.
    schema_wait_s: float = Field(default=3.0, ge=0)
    # Under focus's own limit (2.5 s), so our ack still counts.
    patience_hook_timeout_s: float = Field(default=2.0, gt=0)
    # A stream or claim returned by a tool that focus never starts or drops.
    held_effect_ttl_s: float = Field(default=120.0, gt=0)
    # Real-time pacing of output frames: how far ahead of the clock we send.
    stream_lead_ms: int = Field(default=120, ge=0, le=200)
    # After a stream's last frame: how long to wait for audio-io to report it
    # played out before releasing CONTENT (no audio-io -> this delay).
    drain_timeout_s: float = Field(default=2.0, ge=0)
    inject_wait_timeout_s: float = Field(default=300.0, gt=0)
    # The inject outbox (see outbox.py): empty means <data dir>/<persona>/outbox.
    # Keep it on a volume of the container's own: it must outlive the process.
    inject_outbox_dir: Path | None = None
    # How long an inject may wait for focus (in the outbox, then in focus's
    # queue) before it is too late to speak; a timer's whole range is 1 h.
    inject_ttl_s: float = Field(default=3600.0, gt=0)
    # How long `inject_turn` waits for focus's answer before it returns and
    # leaves the inject to the outbox.
    inject_handoff_s: float = Field(default=2.0, ge=0)

    def skill_list(self) -> list[str]:
        names = [name.strip() for name in self.skills.split(",")]
        return list(dict.fromkeys(name for name in names if name))
