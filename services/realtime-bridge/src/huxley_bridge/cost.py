"""Daily model cost from Realtime usage, with warn / canary / kill-switch
thresholds. Pure: the caller passes the day (the persona's local date)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Pricing(BaseModel):
    """US dollars per million tokens, per kind (gpt-realtime list prices)."""

    model_config = ConfigDict(frozen=True)

    text_input: float = Field(default=4.00, ge=0)
    text_cached_input: float = Field(default=0.40, ge=0)
    text_output: float = Field(default=16.00, ge=0)
    audio_input: float = Field(default=32.00, ge=0)
    audio_cached_input: float = Field(default=0.40, ge=0)
    audio_output: float = Field(default=64.00, ge=0)


class Thresholds(BaseModel):
    model_config = ConfigDict(frozen=True)

    warn_usd: float = Field(default=0.50, ge=0)
    canary_usd: float = Field(default=5.00, ge=0)
    kill_usd: float = Field(default=20.00, ge=0)


class Level(IntEnum):
    OK = 0
    WARN = 1
    CANARY = 2
    KILL = 3


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value > 0 else 0


def usage_cost(usage: Mapping[str, Any], pricing: Pricing) -> float:
    """The dollars one response.done's `usage` cost. Cached tokens are part of
    the input counts; without a breakdown, input counts as text and output as
    audio (the dearer guess)."""
    inputs = usage.get("input_token_details") or {}
    outputs = usage.get("output_token_details") or {}
    if not inputs and not outputs:
        return (
            _int(usage.get("input_tokens")) * pricing.text_input
            + _int(usage.get("output_tokens")) * pricing.audio_output
        ) / 1e6
    cached = inputs.get("cached_tokens_details") or {}
    text_in, audio_in = _int(inputs.get("text_tokens")), _int(inputs.get("audio_tokens"))
    cached_text = min(text_in, _int(cached.get("text_tokens")))
    cached_audio = min(audio_in, _int(cached.get("audio_tokens")))
    dollars = (
        (text_in - cached_text) * pricing.text_input
        + cached_text * pricing.text_cached_input
        + (audio_in - cached_audio) * pricing.audio_input
        + cached_audio * pricing.audio_cached_input
        + _int(outputs.get("text_tokens")) * pricing.text_output
        + _int(outputs.get("audio_tokens")) * pricing.audio_output
    )
    return dollars / 1e6


@dataclass
class CostMeter:
    pricing: Pricing
    thresholds: Thresholds
    day: str = ""
    usd: float = 0.0
    level: Level = Level.OK

    def roll(self, day: str) -> bool:
        """A new day starts from zero; True if it changed."""
        if day == self.day:
            return False
        self.day, self.usd, self.level = day, 0.0, Level.OK
        return True

    def add(self, usage: Mapping[str, Any], day: str) -> Level | None:
        """Count one response; returns the level if this crossed a threshold."""
        self.roll(day)
        self.usd += usage_cost(usage, self.pricing)
        reached = self.level_for(self.usd)
        if reached > self.level:
            self.level = reached
            return reached
        return None

    def level_for(self, usd: float) -> Level:
        t = self.thresholds
        if usd >= t.kill_usd:
            return Level.KILL
        if usd >= t.canary_usd:
            return Level.CANARY
        if usd >= t.warn_usd:
            return Level.WARN
        return Level.OK

    def restore(self, day: str, usd: float) -> None:
        """Carry today's spend over a restart (the level is recomputed)."""
        self.day, self.usd = day, max(0.0, usd)
        self.level = self.level_for(self.usd)

    @property
    def killed(self) -> bool:
        return self.level >= Level.KILL
