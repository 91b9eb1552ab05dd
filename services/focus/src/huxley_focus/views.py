"""What the core shows the outside: the snapshot and the queue event (pure)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from huxley_focus.arbiter import Activity, Arbiter
from huxley_wire.messages import focus as m

if TYPE_CHECKING:
    from huxley_focus.core import FocusCore


def snapshot(core: FocusCore) -> m.Snapshot:
    arbiter = core.arbiter
    foreground = arbiter.foreground()
    return m.Snapshot(
        seq=arbiter.seq,
        channels={c: [activity_view(arbiter, a) for a in arbiter.in_channel(c)] for c in arbiter.order},
        foreground=foreground.activity_id if foreground else None,
        queue=[e.view() for e in core.queue],
        current_inject=core.current.entry.view() if core.current else None,
        holders=dict(core.holders),
    )


def queue_event(core: FocusCore) -> m.QueueEvent:
    return m.QueueEvent(
        seq=core.arbiter.seq,
        queue=[e.view() for e in core.queue],
        current=core.current.entry.view() if core.current else None,
    )


def activity_view(arbiter: Arbiter, activity: Activity) -> m.ActivityView:
    behavior, gain = (None, 0.0) if activity.state is None else arbiter.behavior(activity, activity.state)
    return m.ActivityView(
        behavior=behavior,
        gain=gain,
        activity_id=activity.activity_id,
        channel=activity.channel,
        interface=activity.interface,
        holder=activity.holder,
        content_type=activity.content_type,
        state=activity.state or "pending",
        patience_ms=activity.patience_ms,
        patience_deadline=activity.patience_deadline,
        meta=activity.meta,
    )
