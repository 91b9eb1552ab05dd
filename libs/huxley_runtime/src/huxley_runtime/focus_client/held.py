"""What a holder holds: its activities as focus last told it (pure, no I/O).

Ids that ended are remembered for a while, so a late acquire reply cannot
bring an activity back after its NONE. `reconcile` compares the holdings with
the activity ids a `renew` reply lists; the client turns its answer into
synthesized NONEs and quiet releases.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Literal

from huxley_wire.messages.focus import (
    ActivityMeta,
    Behavior,
    Channel,
    EndReason,
    FocusChange,
    FocusState,
)

ENDED_MEMORY = 512

PendingState = FocusState | Literal["pending"]


@dataclass(frozen=True, slots=True)
class HeldActivity:
    """What the client knows about one of its activities."""

    activity_id: str
    channel: Channel
    interface: str
    state: PendingState
    meta: ActivityMeta
    known_since: float  # loop time when the client learnt of it


@dataclass(frozen=True, slots=True)
class Reconciled:
    """What a renew reply showed: activities focus let go while we were not
    listening (`lost`, each a NONE to deliver) and ones it lists that we do
    not know (`unknown`, to release)."""

    lost: list[FocusChange] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


class Holdings:
    def __init__(self, *, ended_memory: int = ENDED_MEMORY) -> None:
        self.activities: dict[str, HeldActivity] = {}
        self._ended: OrderedDict[str, None] = OrderedDict()
        self._ended_memory = ended_memory

    def state_of(self, activity_id: str) -> PendingState | None:
        held = self.activities.get(activity_id)
        return held.state if held else None

    def acquired(
        self,
        activity_id: str,
        channel: Channel,
        interface: str,
        state: PendingState,
        meta: ActivityMeta,
        now: float,
    ) -> None:
        """An acquire reply; its notice may have come (or ended it) first."""
        if activity_id not in self.activities and activity_id not in self._ended:
            self.activities[activity_id] = HeldActivity(activity_id, channel, interface, state, meta, now)

    def ended(self, activity_id: str) -> bool:
        """It already got its NONE (heard, synthesized or released)."""
        return activity_id in self._ended and activity_id not in self.activities

    def learn(self, change: FocusChange, now: float) -> None:
        if change.state is FocusState.NONE:
            self.forget(change.activity_id)
            return
        known = self.activities.get(change.activity_id)
        if known is not None:
            self.activities[change.activity_id] = replace(known, state=change.state)
        else:  # acquired on our behalf, or the notice beat the acquire reply
            self.activities[change.activity_id] = HeldActivity(
                change.activity_id, change.channel, change.interface, change.state, change.meta, now
            )

    def forget(self, activity_id: str) -> None:
        self.activities.pop(activity_id, None)
        self._ended[activity_id] = None
        while len(self._ended) > self._ended_memory:
            self._ended.popitem(last=False)

    def reconcile(self, listed_ids: list[str], sent_at: float, *, release_unknown: bool) -> Reconciled:
        """Align with a renew reply sent at `sent_at`. An activity learnt
        after that may not be listed yet, so it is kept; unknown ids are only
        reported when no acquire raced the renew (`release_unknown`)."""
        listed = set(listed_ids)
        result = Reconciled()
        for activity_id, held in list(self.activities.items()):
            if activity_id not in listed and held.known_since < sent_at:
                self.forget(activity_id)
                result.lost.append(lost_notice(held))
        if release_unknown:
            # An id that already ended here is one whose NONE focus is still
            # redelivering (it lists it until we ack): not a stranger's.
            for activity_id in sorted(listed - set(self.activities) - set(self._ended)):
                self.forget(activity_id)
                result.unknown.append(activity_id)
        return result


def lost_notice(held: HeldActivity) -> FocusChange:
    """The NONE a holder gets for an activity focus dropped behind its back."""
    return FocusChange(
        seq=0,
        activity_id=held.activity_id,
        channel=held.channel,
        interface=held.interface,
        state=FocusState.NONE,
        behavior=Behavior.MUST_STOP,
        gain=0.0,
        ramp_ms=0,
        reason=EndReason.LEASE_EXPIRED,
        meta=held.meta,
    )
