"""Streams and claims a tool returned, held until focus starts them.

A tool's AudioStream or InputClaim does not start when the tool returns: the
bridge holds it until the turn's barrier, and focus acquires it for this host
(the FocusChange carries `meta.effect_id`) or drops it (`effect_dropped`, or
the bridge's `discard`). What nobody claims within the TTL expires. Pure: the
time is passed in.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from huxley_sdk import AudioStream, InputClaim


def new_effect_id() -> str:
    return f"e-{secrets.token_hex(6)}"


@dataclass(frozen=True)
class HeldEffect:
    effect_id: str
    skill: str
    effect: AudioStream | InputClaim
    held_at: float


class HeldEffects:
    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._held: dict[str, HeldEffect] = {}

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, skill: str, effect: AudioStream | InputClaim, now: float) -> HeldEffect:
        held = HeldEffect(new_effect_id(), skill, effect, now)
        self._held[held.effect_id] = held
        return held

    def take(self, effect_id: str) -> HeldEffect | None:
        return self._held.pop(effect_id, None)

    def expire(self, now: float) -> list[HeldEffect]:
        """Remove and return what was held longer than the TTL."""
        old = [h for h in self._held.values() if now - h.held_at >= self.ttl_s]
        for held in old:
            del self._held[held.effect_id]
        return old

    def drain(self) -> list[HeldEffect]:
        everything = list(self._held.values())
        self._held.clear()
        return everything
