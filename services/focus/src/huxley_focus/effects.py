"""What the pure core asks the bus adapter to do, in order.

The core never performs I/O: every operation returns its reply plus a list of
effects, and the adapter carries them out one at a time in list order (each
notification acked before the next goes out), which is where the reference's
"notifications are serialized, old off before new on" comes from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from huxley_focus.injects import InjectEntry
from huxley_wire.messages.focus import ActivityEvent, InjectEvent, InjectPriority

InjectStep = Literal["queued", "fired", "done", "dropped", "replaced", "expired"]


@dataclass(frozen=True, slots=True)
class Notice:
    """An activity changed state: publish the event, then tell its holder."""

    event: ActivityEvent

    @property
    def holder(self) -> str:
        return self.event.holder


@dataclass(frozen=True, slots=True)
class PatienceHook:
    """Run the holder's on_patience_expired and wait (bounded) for its ack.
    The activity's NONE notice follows in the same effect list."""

    holder: str
    activity_id: str


@dataclass(frozen=True, slots=True)
class DropEffect:
    """Tell a skill-host that a pending stream or claim will never start."""

    holder: str
    effect_id: str
    reason: Literal["preempted", "claim_busy", "superseded", "error"]


@dataclass(frozen=True, slots=True)
class InjectStatus:
    """Publish an inject lifecycle step."""

    event: InjectEvent


@dataclass(frozen=True, slots=True)
class RunInject:
    """Ask the bridge to run an injected turn; retried until acked while the
    inject is still the current one."""

    inject_id: str
    prompt: str
    activity_id: str
    priority: InjectPriority


@dataclass(frozen=True, slots=True)
class QueueChanged:
    """Publish the queue (the adapter sends one event per operation)."""


def inject_status(entry: InjectEntry, status: InjectStep) -> InjectStatus:
    return InjectStatus(
        InjectEvent(
            inject_id=entry.inject_id,
            status=status,
            skill=entry.skill,
            priority=entry.priority,
            dedup_key=entry.dedup_key,
        )
    )


Effect = Notice | PatienceHook | DropEffect | InjectStatus | RunInject | QueueChanged
