"""What audio-io makes of focus, change by change as the FocusFollower reports
them: which activities can be heard, when each claim took the floor (the PTT
guard needs it) and what started or ended (the client relay needs it). Pure:
time is passed in."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from huxley_runtime.focus_client import ActivityStatus
from huxley_wire.messages.focus import ActivityKind, Channel, FocusState

HEARD = (FocusState.FOREGROUND, FocusState.BACKGROUND)  # granted, not pending, not ended


@dataclass(frozen=True, slots=True)
class Change:
    before: ActivityStatus | None  # None: first time we hear of it
    after: ActivityStatus  # state NONE: it ended

    @property
    def started(self) -> bool:
        """It was granted for the first time (pending does not count)."""
        return self.after.state in HEARD and (self.before is None or self.before.state not in HEARD)

    @property
    def ended(self) -> bool:
        return self.after.state is FocusState.NONE and self.before is not None and self.before.state in HEARD


def is_claim(status: ActivityStatus) -> bool:
    return status.channel is Channel.COMMS or status.meta.kind is ActivityKind.CLAIM


def is_stream(status: ActivityStatus) -> bool:
    return status.channel is Channel.CONTENT or status.meta.kind is ActivityKind.STREAM


def as_json(status: ActivityStatus) -> dict[str, Any]:
    """An activity as the client's focus panel gets it."""
    return {
        "activity_id": status.activity_id,
        "channel": str(status.channel),
        "interface": status.interface,
        "holder": status.holder,
        "content_type": str(status.content_type),
        "state": str(status.state),
        "behavior": str(status.behavior) if status.behavior else None,
        "gain": status.gain,
        "reason": str(status.reason) if status.reason else None,
        "seq": status.seq,
        "meta": status.meta.model_dump(mode="json", exclude={"v"}),
    }


class FocusView:
    def __init__(self) -> None:
        self._live: dict[str, ActivityStatus] = {}
        self._claim_floor_at: dict[str, float] = {}

    def apply(self, status: ActivityStatus, now: float, *, fresh: bool = True) -> Change:
        """One activity's new state. `fresh=False` for what a snapshot revealed
        of the past: such a claim did not "just start"."""
        before = self._live.get(status.activity_id)
        if status.state is FocusState.NONE:
            self._live.pop(status.activity_id, None)
            self._claim_floor_at.pop(status.activity_id, None)
        else:
            self._live[status.activity_id] = status
            if (
                is_claim(status)
                and status.state is FocusState.FOREGROUND
                and status.activity_id not in self._claim_floor_at
            ):
                self._claim_floor_at[status.activity_id] = now if fresh else -math.inf
        return Change(before, status)

    def live(self) -> list[ActivityStatus]:
        return list(self._live.values())

    def get(self, activity_id: str) -> ActivityStatus | None:
        return self._live.get(activity_id)

    def foreground_claim(self) -> ActivityStatus | None:
        """The claim that owns the microphone: COMMS in FOREGROUND."""
        for status in self._live.values():
            if is_claim(status) and status.state is FocusState.FOREGROUND:
                return status
        return None

    def claim_age_ms(self, now: float) -> float | None:
        claim = self.foreground_claim()
        if claim is None:
            return None
        return (now - self._claim_floor_at.get(claim.activity_id, -math.inf)) * 1000.0
