"""Side effects a turn holds until its barrier: at most one stream or claim.

Speech comes before media, so an AudioStream or InputClaim returned by a tool
waits for the turn's end and goes to focus with `turn_end`. Within a turn
the last one wins, except that a claim beats a stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from huxley_wire.messages.focus import PendingEffect
from huxley_wire.messages.skills import AudioStreamEffect, InputClaimEffect


@dataclass(frozen=True, slots=True)
class HeldEffect:
    host: str  # the skill-host instance that keeps the effect
    skill: str
    effect: AudioStreamEffect | InputClaimEffect

    @property
    def kind(self) -> Literal["stream", "claim"]:
        return "claim" if isinstance(self.effect, InputClaimEffect) else "stream"

    @property
    def effect_id(self) -> str:
        return self.effect.effect_id

    def pending(self) -> PendingEffect:
        if isinstance(self.effect, InputClaimEffect):
            return PendingEffect(
                kind="claim",
                host=self.host,
                skill=self.skill,
                effect_id=self.effect_id,
                title=self.effect.title,
            )
        return PendingEffect(
            kind="stream",
            host=self.host,
            skill=self.skill,
            effect_id=self.effect_id,
            content_type=self.effect.content_type,
            patience_ms=self.effect.patience_ms,
            label=self.effect.label,
            preroll_ms=self.effect.preroll_ms,
        )


def hold(current: HeldEffect | None, new: HeldEffect) -> tuple[HeldEffect, HeldEffect | None]:
    """(what the turn holds now, what is dropped): last one wins, a claim beats a stream."""
    if current is None:
        return new, None
    if current.kind == "claim" and new.kind == "stream":
        return current, new
    return new, current
