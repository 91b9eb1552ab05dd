"""The bridge's answers to `run_inject`, applied to the core (pure).

`accepted` / `already_running`: the turn is the bridge's now; `already_done`:
it ended although no `turn_end` reached focus (lost in a restart), so it is
ended here and DIALOG never stays stuck. `unavailable`: the bridge cannot
reach its model, so the turn never started — its DIALOG is given back and the
inject returns to the head of the queue (same id, not counted as fired, its
TTL running) until the bridge renews with `ready` again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from huxley_focus.effects import Effect, QueueChanged, inject_status
from huxley_focus.injects import FiringInject
from huxley_wire.messages import focus as m
from huxley_wire.messages.focus import EndReason

if TYPE_CHECKING:
    from huxley_focus.core import FocusCore


def _current(core: FocusCore, inject_id: str, activity_id: str) -> FiringInject | None:
    current = core.current
    if current is None or current.entry.inject_id != inject_id or current.activity_id != activity_id:
        return None  # a late answer about an inject that is no longer running
    return current


def accepted(core: FocusCore, inject_id: str, activity_id: str, status: str, now: float) -> list[Effect]:
    current = _current(core, inject_id, activity_id)
    if current is None:
        return []
    current.accepted = True
    if status != "already_done":
        return []
    _reply, out = core.turn_end(
        m.TurnEnd(holder=core.bridge_holder, activity_id=activity_id, inject_id=inject_id), now
    )
    return out


def unavailable(core: FocusCore, inject_id: str, activity_id: str, now: float) -> list[Effect]:
    current = _current(core, inject_id, activity_id)
    if current is None or current.accepted:
        return []  # an earlier attempt was accepted: that turn is the bridge's
    core.bridge_ready = False  # it said so; its next renew says when it is back
    core.current = None
    core.queue.push_front(current.entry)
    out: list[Effect] = []
    turn = core.arbiter.get(activity_id)
    if turn is not None:
        tx = core.arbiter.begin(now)
        core.arbiter.end(tx, turn, EndReason.ERROR)
        core.commit(tx, out, drain=False)  # the floor goes back to what it displaced
    out.append(inject_status(current.entry, "queued"))
    out.append(QueueChanged())
    return out
