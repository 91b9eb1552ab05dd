"""What runs after a turn (the `turn_end` barrier), as a pure decision.

The turn may have produced a stream or claim (`pending`); the queue may hold
injects. In order:

- a queued PREEMPT fires if the turn produced a stream or claim (which is
  dropped, `preempted`);
- else a queued BLOCK_BEHIND_COMMS fires if the turn produced a stream
  (dropped, `preempted`);
- else the claim starts, unless COMMS already holds one (dropped,
  `claim_busy`, and the queue gets its chance as below);
- else the stream starts;
- else the first queued inject that is eligible at a barrier fires (a quiet
  turn end: paused content does not hold back a NORMAL, only a live claim
  holds back a non-PREEMPT).

Nothing fires while the bridge (the executor) holds no lease.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from huxley_focus.injects import InjectEntry, InjectQueue
from huxley_wire.messages.focus import InjectPriority, PendingEffect, TurnEnded

DropReason = Literal["preempted", "claim_busy"]


@dataclass(frozen=True, slots=True)
class AfterTurn:
    fire: InjectEntry | None = None  # the inject that runs next
    start: PendingEffect | None = None  # the turn's stream or claim that starts
    dropped: DropReason | None = None  # why the turn's stream or claim never starts

    def reply(self, pending: PendingEffect | None, effect_activity_id: str | None = None) -> TurnEnded:
        """The `turn_end` reply; `effect_activity_id` is the started effect's activity."""
        dropped_effect = pending.effect_id if self.dropped is not None and pending is not None else None
        if self.fire is not None:
            return TurnEnded(
                outcome="fired_inject", inject_id=self.fire.inject_id, dropped_effect=dropped_effect
            )
        if self.start is not None:
            outcome: Literal["started_claim", "started_stream"] = (
                "started_claim" if self.start.kind == "claim" else "started_stream"
            )
            return TurnEnded(outcome=outcome, effect_activity_id=effect_activity_id)
        return TurnEnded(outcome="idle", dropped_effect=dropped_effect)


def after_turn(
    queue: InjectQueue,
    pending: PendingEffect | None,
    *,
    executor: bool,
    claim_live: bool,
    eligible: Callable[[InjectEntry], bool],
) -> AfterTurn:
    """`eligible` judges a queued inject at the barrier; `executor`: the
    bridge holds a lease; `claim_live`: COMMS holds a claim."""
    if pending is not None and executor:
        preempt = queue.first(lambda e: e.priority is InjectPriority.PREEMPT)
        if preempt is not None:
            return AfterTurn(fire=preempt, dropped="preempted")
        if pending.kind == "stream":
            block = queue.first(lambda e: e.priority is InjectPriority.BLOCK_BEHIND_COMMS and eligible(e))
            if block is not None:
                return AfterTurn(fire=block, dropped="preempted")
    if pending is not None and not (pending.kind == "claim" and claim_live):
        return AfterTurn(start=pending)
    dropped: DropReason | None = "claim_busy" if pending is not None else None
    fire = queue.first(eligible) if executor else None
    return AfterTurn(fire=fire, dropped=dropped)
