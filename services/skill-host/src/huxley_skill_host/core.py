"""The skill-host core: the streams and claims skills returned, from held to
finished, and what each focus notice means for them.

Pure and synchronous: every operation takes `now` where time matters and
returns the commands (huxley_skill_host.commands) the bus adapter performs,
in order. The adapter calls it from the event loop only, so no lock.

- A tool's AudioStream or InputClaim is **held** under an effect id until
  focus starts it (a notice with `meta.effect_id`), drops it
  (`effect_dropped`, the bridge's `discard`) or it is held past the TTL.
- A **stream** follows focus: FOREGROUND (or BACKGROUND + MAY_DUCK) plays,
  MUST_PAUSE stops its pump and waits, FOREGROUND again starts the pump anew
  (the skill's factory resumes from its saved position), NONE stops it for
  good. One pump at a time: a new one starts only once the old one is done.
- A **claim** gets the mic in the foreground, loses it in the background,
  and ends exactly once however it ends (docs/protocol.md, "Skill hosts").
- A notice for an activity we don't know yet is kept a few seconds: the
  reply to our own acquire may come after it.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import deque
from dataclasses import dataclass
from typing import Literal

from huxley_sdk import AudioStream, ClaimEndReason, InputClaim
from huxley_skill_host.commands import (
    ClaimRef,
    Command,
    EffectDropped,
    EndClaim,
    ForeignEffect,
    GrantClaim,
    MuteClaim,
    Release,
    RunPatienceHook,
    StartPump,
    StartStream,
    StopPump,
    StreamOver,
    UnknownEffect,
)
from huxley_skill_host.held import HeldEffect, HeldEffects
from huxley_wire.messages.focus import Behavior, EndReason, FocusChange, FocusState

EARLY_NOTICE_S = 5.0
FINISHED_MEMO = 256  # finished activities whose late notices are ignored

Want = Literal["play", "pause", "stop"]
# What a pump reports: the iterator ran out, it raised, or we stopped it.
PumpResult = Literal["ended", "failed", "cancelled"]

_FROM_FOCUS = {
    EndReason.RELEASED: ClaimEndReason.NATURAL,
    EndReason.STOPPED: ClaimEndReason.NATURAL,
    EndReason.USER_PTT: ClaimEndReason.USER_PTT,
    EndReason.PREEMPTED: ClaimEndReason.PREEMPTED,
    EndReason.DISPLACED: ClaimEndReason.PREEMPTED,
    EndReason.REPLACED: ClaimEndReason.PREEMPTED,
}


def claim_end_reason(reason: EndReason | str | None) -> ClaimEndReason:
    """Focus's EndReason (or a drop/discard reason) as the skill's ClaimEndReason."""
    if isinstance(reason, EndReason):
        return _FROM_FOCUS.get(reason, ClaimEndReason.ERROR)
    if reason in {"user_ptt", "preempted"}:
        return ClaimEndReason(reason)
    if reason == "superseded":
        return ClaimEndReason.PREEMPTED
    return ClaimEndReason.ERROR


def wanted(state: FocusState, behavior: Behavior) -> Want:
    if state is FocusState.NONE:
        return "stop"
    if state is FocusState.FOREGROUND or behavior is Behavior.MAY_DUCK:
        return "play"
    return "pause"


@dataclass
class StreamState:
    activity_id: str
    held: HeldEffect
    want: Want = "pause"
    pump: Literal["idle", "running", "stopping"] = "idle"
    starts: int = 0  # pumps started (the factory calls)


class HostCore:
    def __init__(self, held_ttl_s: float, *, early_notice_s: float = EARLY_NOTICE_S) -> None:
        self.held = HeldEffects(held_ttl_s)
        self.streams: dict[str, StreamState] = {}  # by activity id, until over
        self.claims: dict[int, ClaimRef] = {}  # live (not ended) claims
        self.early_notice_s = early_notice_s
        self._claim_of: dict[str, int] = {}  # activity id -> claim id
        self._finished: deque[str] = deque(maxlen=FINISHED_MEMO)
        self._early: dict[str, tuple[float, FocusChange]] = {}
        self._ids = itertools.count(1)

    # -- holding ----------------------------------------------------------------------------
    def hold(self, skill: str, effect: AudioStream | InputClaim, now: float) -> HeldEffect:
        return self.held.hold(skill, effect, now)

    # -- focus notices ----------------------------------------------------------------------
    def on_focus(self, change: FocusChange, now: float) -> list[Command]:
        activity = change.activity_id
        if activity in self.streams:
            return self._stream_wants(self.streams[activity], wanted(change.state, change.behavior))
        if activity in self._claim_of:
            return self._claim_notice(self._claim_of[activity], change)
        if activity in self._finished:
            return []
        effect_id = change.meta.effect_id
        held = self.held.take(effect_id) if effect_id else None
        if held is not None:
            if change.state is FocusState.NONE:
                return self._drop(held, change.reason)
            if isinstance(held.effect, AudioStream):
                stream = self.streams[activity] = StreamState(activity, held)
                return [
                    StartStream(activity, held),
                    *self._stream_wants(stream, wanted(change.state, change.behavior)),
                ]
            claim = self._open(held.skill, held.effect, held.effect_id, activity)
            return self._claim_notice(claim.claim_id, change)
        if effect_id:
            out: list[Command] = [ForeignEffect(activity, effect_id)]
            if change.state is not FocusState.NONE:
                out.append(Release(activity, EndReason.ERROR))
            return out
        if change.state is not FocusState.NONE:
            self._early[activity] = (now, change)
        return []

    def on_patience_expired(self, activity_id: str) -> list[Command]:
        stream = self.streams.get(activity_id)
        effect = stream.held.effect if stream is not None else None
        if stream is None or not isinstance(effect, AudioStream) or effect.on_patience_expired is None:
            return []
        return [RunPatienceHook(activity_id, stream.held)]

    def on_effect_dropped(self, effect_id: str, reason: str) -> list[Command]:
        held = self.held.take(effect_id)
        if held is None:
            return [UnknownEffect(effect_id, reason, "effect_dropped")]
        return self._drop(held, reason)

    def discard(self, effect_id: str, reason: str) -> list[Command]:
        held = self.held.take(effect_id)
        if held is None:
            return [UnknownEffect(effect_id, reason, "discard")]
        return self._drop(held, reason)

    def expire(self, now: float) -> list[Command]:
        """Drop held effects nobody started and early notices nobody asked for."""
        out: list[Command] = []
        for held in self.held.expire(now):
            out += self._drop(held, "error", expired=True)
        for activity, (seen_at, _) in list(self._early.items()):
            if now - seen_at > self.early_notice_s:
                del self._early[activity]
        return out

    def stop(self) -> list[Command]:
        """The host stops: streams stop, live claims end with `error` (COMMS
        released), held effects are dropped."""
        out: list[Command] = []
        for stream in list(self.streams.values()):
            out += self._stream_wants(stream, "stop")
        for claim_id in list(self.claims):
            out += self.end_claim(claim_id, ClaimEndReason.ERROR, release=True)
        for held in self.held.drain():
            out += self._drop(held, "error")
        return out

    # -- streams ----------------------------------------------------------------------------
    def pump_done(self, activity_id: str, result: PumpResult) -> list[Command]:
        stream = self.streams.get(activity_id)
        if stream is None or stream.pump == "idle":
            return []
        stream.pump = "idle"
        if result != "cancelled":
            return self._over(stream, result)
        return self._stream_wants(stream, stream.want, force=True)

    def _stream_wants(self, stream: StreamState, want: Want, *, force: bool = False) -> list[Command]:
        if stream.want == "stop" and not force:
            return []  # stopping is final
        stream.want = want
        if want == "play" and stream.pump == "idle":
            stream.pump, stream.starts = "running", stream.starts + 1
            return [StartPump(stream.activity_id)]
        if want != "play" and stream.pump == "running":
            stream.pump = "stopping"  # stopped once: a second stop could cut the skill's save short
            return [StopPump(stream.activity_id)]
        if want == "stop" and stream.pump == "idle":
            return self._over(stream, "stopped")
        return []

    def _over(self, stream: StreamState, outcome: Literal["ended", "failed", "stopped"]) -> list[Command]:
        del self.streams[stream.activity_id]
        self._finished.append(stream.activity_id)
        return [StreamOver(stream.activity_id, stream.held, outcome)]

    # -- claims -----------------------------------------------------------------------------
    def busy_claim(self) -> ClaimRef | None:
        """The live claim, if any (this host runs one at a time)."""
        return next(iter(self.claims.values()), None)

    def active_claim(self, skill: str) -> ClaimRef | None:
        return next((c for c in self.claims.values() if c.skill == skill), None)

    def open_claim(self, skill: str, claim: InputClaim) -> ClaimRef:
        """A claim the skill starts itself (`ctx.start_input_claim`), before
        focus has answered the acquire."""
        return self._open(skill, claim, None, None)

    def forget_claim(self, claim_id: int) -> None:
        """The acquire failed: the claim never was (the skill gets the error)."""
        self.claims.pop(claim_id, None)

    def claim_acquired(self, claim_id: int, activity_id: str, state: FocusState | str) -> list[Command]:
        claim = self.claims.get(claim_id)
        if claim is None:
            return []
        self.claims[claim_id] = dataclasses.replace(claim, activity_id=activity_id)
        self._claim_of[activity_id] = claim_id
        out: list[Command] = []
        if state == FocusState.FOREGROUND:
            out.append(GrantClaim(self.claims[claim_id]))
        early = self._early.pop(activity_id, None)
        if early is not None:
            out += self._claim_notice(claim_id, early[1])
        return out

    def end_claim(self, claim_id: int, reason: ClaimEndReason, *, release: bool) -> list[Command]:
        """End a claim; only the first end of a claim does anything."""
        claim = self.claims.pop(claim_id, None)
        if claim is None:
            return []
        if claim.activity_id is not None:
            self._claim_of.pop(claim.activity_id, None)
            self._finished.append(claim.activity_id)
        return [EndClaim(claim, reason, release)]

    def _open(
        self, skill: str, claim: InputClaim, effect_id: str | None, activity_id: str | None
    ) -> ClaimRef:
        ref = ClaimRef(next(self._ids), skill, claim, effect_id, activity_id)
        self.claims[ref.claim_id] = ref
        if activity_id is not None:
            self._claim_of[activity_id] = ref.claim_id
        return ref

    def _claim_notice(self, claim_id: int, change: FocusChange) -> list[Command]:
        claim = self.claims.get(claim_id)
        if claim is None:
            return []
        if change.state is FocusState.NONE:
            return self.end_claim(claim_id, claim_end_reason(change.reason), release=False)
        if change.state is FocusState.FOREGROUND:
            return [GrantClaim(claim)]
        return [MuteClaim(claim)]

    # -- dropping ---------------------------------------------------------------------------
    def _drop(
        self, held: HeldEffect, reason: EndReason | str | None, *, expired: bool = False
    ) -> list[Command]:
        """A held effect that will never start; a claim still hears its end."""
        out: list[Command] = [EffectDropped(held, str(reason), expired)]
        if isinstance(held.effect, InputClaim):
            claim = self._open(held.skill, held.effect, held.effect_id, None)
            out += self.end_claim(claim.claim_id, claim_end_reason(reason), release=False)
        return out
