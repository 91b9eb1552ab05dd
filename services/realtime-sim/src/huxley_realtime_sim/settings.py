"""Simulator settings (HUXLEY_SIM_* on top of the shared HUXLEY_* ones).

The command line's options override them (`huxley-realtime-sim --port 0`);
`huxley up` and compose set the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from huxley_runtime.settings import HuxleySettings

DEFAULT_PORT = 8790


class SimSettings(HuxleySettings):
    sim_host: str = "127.0.0.1"
    sim_port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)  # 0 picks a free port
    sim_rules: Path | None = None  # None: the shipped default_rules.yaml
    sim_speed: float | None = Field(default=None, ge=0)  # None: the rule file's pacing
    sim_voice: Literal["tones", "espeak"] | None = None  # None: the rule file's voice
    sim_controls: bool = False  # the HTTP /control/* endpoints (off: 403)

    @field_validator("sim_rules", "sim_speed", "sim_voice", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # HUXLEY_SIM_RULES= (set but empty, as compose files tend to) means "not given".
        return None if value == "" else value
