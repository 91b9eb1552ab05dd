"""Driving the pure focus core in tests: a fake clock, readable ids, and the
effects of each operation rendered as short tuples."""

from __future__ import annotations

from typing import Any

from huxley_focus.core import FocusCore
from huxley_focus.effects import (
    DropEffect,
    Effect,
    InjectStatus,
    Notice,
    PatienceHook,
    QueueChanged,
    RunInject,
)
from huxley_wire.messages import focus as m
from huxley_wire.messages.focus import ActivityMeta, Channel, ContentType, EndReason, InjectPriority


def render(effects: list[Effect]) -> list[tuple[Any, ...]]:
    """Notices as (activity_id, state[, reason]); the rest by kind."""
    out: list[tuple[Any, ...]] = []
    for e in effects:
        if isinstance(e, Notice):
            ev = e.event
            out.append(
                (ev.activity_id, ev.state.value, ev.reason.value)
                if ev.reason
                else (ev.activity_id, ev.state.value)
            )
        elif isinstance(e, PatienceHook):
            out.append(("hook", e.activity_id))
        elif isinstance(e, DropEffect):
            out.append(("drop", e.effect_id, e.reason))
        elif isinstance(e, InjectStatus):
            out.append(("inject", e.event.inject_id, e.event.status))
        elif isinstance(e, RunInject):
            out.append(("run", e.inject_id, e.activity_id))
        elif isinstance(e, QueueChanged):
            pass
    return out


def notices(effects: list[Effect]) -> list[m.ActivityEvent]:
    return [e.event for e in effects if isinstance(e, Notice)]


class Sim:
    """A FocusCore with a clock that only moves when told to."""

    def __init__(self, *, bridge: bool = True, **options: Any) -> None:
        self.count = 0
        self.now = 1_000_000.0
        self.core = FocusCore(new_id=self._new_id, **options)
        self.effects: list[Effect] = []
        self.bridge_ready: bool | None = None  # what the bridge's renews state
        if bridge:
            self.renew("bridge")

    def _new_id(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def _keep(self, effects: list[Effect]) -> list[tuple[Any, ...]]:
        self.effects += effects
        return render(effects)

    # -- operations (each returns the reply and the rendered effects) ----------------
    def acquire(
        self,
        holder: str,
        channel: Channel,
        interface: str,
        *,
        patience_ms: int = 0,
        mixable: bool = False,
        meta: ActivityMeta | None = None,
    ) -> tuple[m.Acquired, list[tuple[Any, ...]]]:
        req = m.Acquire(
            holder=holder,
            channel=channel,
            interface=interface,
            content_type=ContentType.MIXABLE if mixable else ContentType.NONMIXABLE,
            patience_ms=patience_ms,
            meta=meta or ActivityMeta(),
        )
        reply, effects = self.core.acquire(req, self.now)
        return reply, self._keep(effects)

    def book(self, patience_ms: int = 30 * 60 * 1000) -> str:
        reply, _ = self.acquire("host", Channel.CONTENT, "audiobooks", patience_ms=patience_ms)
        return reply.activity_id

    def release(
        self, holder: str, activity_id: str, reason: EndReason = EndReason.RELEASED
    ) -> list[tuple[Any, ...]]:
        _, effects = self.core.release(
            m.Release(holder=holder, activity_id=activity_id, reason=reason), self.now
        )
        return self._keep(effects)

    def renew(self, holder: str) -> tuple[m.Renewed, list[tuple[Any, ...]]]:
        ready = self.bridge_ready if holder == "bridge" else None
        reply, effects = self.core.renew(holder, self.now, ready)
        return reply, self._keep(effects)

    def bridge_says(self, ready: bool) -> list[tuple[Any, ...]]:
        """The bridge's model session came or went: it renews at once."""
        self.bridge_ready = ready
        return self.renew("bridge")[1]

    def inject(
        self,
        inject_id: str,
        priority: InjectPriority = InjectPriority.BLOCK_BEHIND_COMMS,
        *,
        dedup_key: str | None = None,
        ttl_s: float | None = None,
        wait: bool = False,
    ) -> tuple[m.Injected, list[tuple[Any, ...]]]:
        req = m.Inject(
            inject_id=inject_id,
            prompt=f"say {inject_id}",
            priority=priority,
            dedup_key=dedup_key,
            ttl_s=ttl_s,
            wait=wait,
        )
        reply, effects = self.core.inject(req, self.now)
        return reply, self._keep(effects)

    def turn_end(
        self, activity_id: str, pending: m.PendingEffect | None = None, holder: str = "bridge"
    ) -> tuple[m.TurnEnded, list[tuple[Any, ...]]]:
        reply, effects = self.core.turn_end(
            m.TurnEnd(holder=holder, activity_id=activity_id, pending=pending), self.now
        )
        return reply, self._keep(effects)

    def interrupt(self, claim_grace_ms: int = 0) -> tuple[m.Interrupted, list[tuple[Any, ...]]]:
        reply, effects = self.core.interrupt(m.Interrupt(claim_grace_ms=claim_grace_ms), self.now)
        return reply, self._keep(effects)

    def user_turn(self) -> str:
        reply, _ = self.acquire("bridge", Channel.DIALOG, "user", meta=ActivityMeta(kind="turn"))
        return reply.activity_id

    def advance(
        self, seconds: float, *, renew: tuple[str, ...] = ("bridge", "host")
    ) -> list[tuple[Any, ...]]:
        """Move the clock in steps no longer than a renew interval, renewing the
        given holders (the others go silent), and tick."""
        rendered: list[tuple[Any, ...]] = []
        remaining = seconds
        while remaining > 1e-9:
            step = min(0.5, remaining)
            self.now += step
            remaining -= step
            for holder in renew:
                rendered += self.renew(holder)[1]
            rendered += self._keep(self.core.tick(self.now))
        return rendered

    # -- reading ------------------------------------------------------------------------------
    def state(self, activity_id: str) -> str | None:
        activity = self.core.arbiter.get(activity_id)
        if activity is None:
            return None
        return activity.state.value if activity.state else "pending"

    def dialog(self) -> str:
        """The id of the (single) DIALOG activity."""
        (turn,) = self.core.arbiter.stacks[Channel.DIALOG]
        return turn.activity_id

    def queue(self) -> list[str]:
        return [e.inject_id for e in self.core.queue]


def stream(effect_id: str = "e1", *, patience_ms: int = 0, skill: str = "audiobooks") -> m.PendingEffect:
    return m.PendingEffect(
        kind="stream", host="host", skill=skill, effect_id=effect_id, patience_ms=patience_ms
    )


def claim(effect_id: str = "c1", *, skill: str = "calls") -> m.PendingEffect:
    return m.PendingEffect(kind="claim", host="host", skill=skill, effect_id=effect_id)
