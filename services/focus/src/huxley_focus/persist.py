"""The core's state to and from the persisted document (`state.py`), and what
a restarted focus announces once it has its state back (pure)."""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

from huxley_focus.arbiter import Activity
from huxley_focus.effects import Effect, QueueChanged, RunInject, inject_status
from huxley_focus.injects import FiringInject, InjectEntry
from huxley_focus.state import SavedActivity, SavedFiring, SavedFocus, SavedInject

if TYPE_CHECKING:
    from huxley_focus.core import FocusCore


def dump(core: FocusCore) -> SavedFocus:
    arbiter = core.arbiter
    current = None
    if core.current is not None:
        current = SavedFiring(
            entry=_save_entry(core.current.entry),
            activity_id=core.current.activity_id,
            accepted=core.current.accepted,
        )
    return SavedFocus(
        seq=arbiter.seq,
        activities=[_save_activity(a) for channel in arbiter.order for a in arbiter.stacks[channel]],
        queue=[_save_entry(e) for e in core.queue],
        current=current,
        seen=list(core.queue.seen),
        holders=sorted(core.holders),
        turn_ends=dict(core.turn_ends),
        bridge_ready=core.bridge_ready,
    )


def load(core: FocusCore, saved: SavedFocus, now: float) -> list[Effect]:
    """Restore a persisted state into a fresh core: every holder gets a fresh
    lease, patience deadlines keep their wall-clock value, and the effects
    re-announce each live activity's state and re-send run_inject for the
    current inject (the bridge is idempotent on inject_id)."""
    arbiter = core.arbiter
    arbiter.seq = saved.seq
    arbiter.restore([_load_activity(s) for s in saved.activities])
    for s in saved.queue:
        core.queue.entries.append(_load_entry(s))
    for inject_id in saved.seen:
        core.queue.remember(inject_id)
    core.turn_ends = OrderedDict(saved.turn_ends)
    core.bridge_ready = saved.bridge_ready
    holders = set(saved.holders) | {a.holder for a in arbiter.activities()}
    for holder in sorted(holders):
        core.leases.touch(holder, now)
    out: list[Effect] = []
    for activity in arbiter.activities():
        if activity.state is not None:
            out.append(arbiter.notice_current(activity, now))
    arbiter.first_told.clear()  # every holder's lease starts now anyway
    if saved.current is not None and saved.current.activity_id in arbiter.by_id:
        core.current = FiringInject(
            entry=_load_entry(saved.current.entry),
            activity_id=saved.current.activity_id,
            accepted=saved.current.accepted,
        )
        entry = core.current.entry
        out.append(RunInject(entry.inject_id, entry.prompt, core.current.activity_id, entry.priority))
    elif saved.current is not None:
        # Its DIALOG is gone: it was never going to finish; run it again unless it ran.
        lost = _load_entry(saved.current.entry)
        if saved.current.accepted:
            out.append(inject_status(lost, "done"))
        else:
            core.queue.push_front(lost)
    out.append(QueueChanged())
    return out


# The saved models carry exactly the fields of the core's records (a test keeps
# them equal), so each direction is a field-for-field copy.


def _save_activity(a: Activity) -> SavedActivity:
    return SavedActivity.model_validate(a, from_attributes=True)


def _load_activity(s: SavedActivity) -> Activity:
    return Activity(**dict(s))


def _save_entry(entry: InjectEntry) -> SavedInject:
    return SavedInject.model_validate(entry, from_attributes=True)


def _load_entry(saved: SavedInject) -> InjectEntry:
    return InjectEntry(**dict(saved))
