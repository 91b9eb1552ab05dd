"""What audio-io knows of focus: the live activities, built from ActivityEvents
(and a Snapshot after a start or a reconnect). Pure: time is passed in."""

from __future__ import annotations

import math
from dataclasses import dataclass

from huxley_wire.messages.focus import (
    ActivityEvent,
    ActivityKind,
    Behavior,
    Channel,
    ContentType,
    FocusState,
    Snapshot,
)

# Used only when rebuilding from a Snapshot, which carries no gains.
DEFAULT_DUCK_GAIN = 0.3
DEFAULT_RAMP_MS = 100


@dataclass(frozen=True, slots=True)
class Change:
    before: ActivityEvent | None  # None: first time we hear of it
    after: ActivityEvent  # state NONE: it ended

    @property
    def started(self) -> bool:
        return self.before is None and self.after.state is not FocusState.NONE

    @property
    def ended(self) -> bool:
        return self.after.state is FocusState.NONE and self.before is not None


def is_claim(event: ActivityEvent) -> bool:
    return event.channel is Channel.COMMS or event.meta.kind is ActivityKind.CLAIM


def is_stream(event: ActivityEvent) -> bool:
    return event.channel is Channel.CONTENT or event.meta.kind is ActivityKind.STREAM


class FocusView:
    def __init__(self) -> None:
        self._live: dict[str, ActivityEvent] = {}
        self._claim_started_at: dict[str, float] = {}
        self.synced = False  # a snapshot or an event has been seen

    def apply(self, event: ActivityEvent, now: float) -> Change:
        self.synced = True
        before = self._live.get(event.activity_id)
        if event.state is FocusState.NONE:
            self._live.pop(event.activity_id, None)
            self._claim_started_at.pop(event.activity_id, None)
        else:
            self._live[event.activity_id] = event
            if (
                is_claim(event)
                and event.state is FocusState.FOREGROUND
                and event.activity_id not in self._claim_started_at
            ):
                self._claim_started_at[event.activity_id] = now
        return Change(before, event)

    def load(self, snapshot: Snapshot) -> list[Change]:
        """Replace the view with a focus snapshot; returns the changes it implies
        (activities that appeared, changed, or are gone)."""
        fresh: dict[str, ActivityEvent] = {}
        for channel, stack in snapshot.channels.items():
            for view in stack:
                if view.state == "pending":
                    continue  # silent, and focus has told nobody yet
                state = FocusState(view.state)
                if state is FocusState.FOREGROUND:
                    behavior, gain = Behavior.PRIMARY, 1.0
                elif view.content_type is ContentType.MIXABLE:
                    behavior, gain = Behavior.MAY_DUCK, DEFAULT_DUCK_GAIN
                else:
                    behavior, gain = Behavior.MUST_PAUSE, 0.0
                fresh[view.activity_id] = ActivityEvent(
                    seq=snapshot.seq,
                    ts=0.0,
                    activity_id=view.activity_id,
                    channel=channel,
                    interface=view.interface,
                    holder=view.holder,
                    content_type=view.content_type,
                    state=state,
                    behavior=behavior,
                    gain=gain,
                    ramp_ms=DEFAULT_RAMP_MS,
                    meta=view.meta,
                )
        changes = []
        for activity_id, old in list(self._live.items()):
            if activity_id not in fresh:
                gone = old.model_copy(
                    update={"state": FocusState.NONE, "behavior": Behavior.MUST_STOP, "gain": 0.0}
                )
                changes.append(self.apply(gone, 0.0))
        for event in fresh.values():
            if self._live.get(event.activity_id) != event:
                known = event.activity_id in self._claim_started_at
                changes.append(self.apply(event, 0.0))
                if not known and event.activity_id in self._claim_started_at:
                    # A claim found in a snapshot is not "just started".
                    self._claim_started_at[event.activity_id] = -math.inf
        self.synced = True
        return changes

    def live(self) -> list[ActivityEvent]:
        return list(self._live.values())

    def get(self, activity_id: str) -> ActivityEvent | None:
        return self._live.get(activity_id)

    def foreground_claim(self) -> ActivityEvent | None:
        """The claim that owns the microphone: COMMS in FOREGROUND."""
        for event in self._live.values():
            if is_claim(event) and event.state is FocusState.FOREGROUND:
                return event
        return None

    def claim_age_ms(self, now: float) -> float | None:
        claim = self.foreground_claim()
        if claim is None:
            return None
        return (now - self._claim_started_at.get(claim.activity_id, -math.inf)) * 1000.0
