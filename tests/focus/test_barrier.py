"""The turn-end decision alone (barrier.after_turn), as a table."""

from __future__ import annotations

from typing import Literal

import pytest

from huxley_focus.barrier import after_turn
from huxley_focus.injects import InjectEntry, InjectQueue
from huxley_wire.messages.focus import InjectPriority, PendingEffect

P = InjectPriority


def queue_of(*priorities: InjectPriority) -> InjectQueue:
    queue = InjectQueue()
    for n, priority in enumerate(priorities):
        queue.put(InjectEntry(f"i-{n}", "say it", priority, None, None, False, 0.0))
    return queue


def effect(kind: Literal["stream", "claim"]) -> PendingEffect:
    return PendingEffect(kind=kind, host="skill-host-a", skill="book", effect_id="e-1")


@pytest.mark.parametrize(
    ("pending", "queued", "executor", "claim_live", "expect"),
    [
        # nothing produced: the first inject eligible at a barrier runs
        (None, (P.NORMAL,), True, False, ("fired_inject", "i-0", None)),
        (None, (), True, False, ("idle", None, None)),
        (None, (P.NORMAL,), False, False, ("idle", None, None)),  # no bridge, no inject
        # a live claim holds back all but PREEMPT
        (None, (P.NORMAL, P.PREEMPT), True, True, ("fired_inject", "i-1", None)),
        # a PREEMPT beats the turn's stream or claim
        ("stream", (P.NORMAL, P.PREEMPT), True, False, ("fired_inject", "i-1", "e-1")),
        ("claim", (P.PREEMPT,), True, False, ("fired_inject", "i-0", "e-1")),
        # BLOCK_BEHIND_COMMS beats a stream, not a claim
        ("stream", (P.BLOCK_BEHIND_COMMS,), True, False, ("fired_inject", "i-0", "e-1")),
        ("claim", (P.BLOCK_BEHIND_COMMS,), True, False, ("started_claim", None, None)),
        # a NORMAL never beats what the turn produced
        ("stream", (P.NORMAL,), True, False, ("started_stream", None, None)),
        # without the bridge even a PREEMPT waits; the effect starts
        ("stream", (P.PREEMPT,), False, False, ("started_stream", None, None)),
        # a second claim is dropped, and the queue gets its chance
        ("claim", (), True, True, ("idle", None, "e-1")),
        ("claim", (P.NORMAL, P.PREEMPT), True, True, ("fired_inject", "i-1", "e-1")),
    ],
)
def test_what_runs_after_a_turn(
    pending: Literal["stream", "claim"] | None,
    queued: tuple[InjectPriority, ...],
    executor: bool,
    claim_live: bool,
    expect: tuple[str, str | None, str | None],
) -> None:
    produced = effect(pending) if pending else None
    choice = after_turn(
        queue_of(*queued),
        produced,
        executor=executor,
        claim_live=claim_live,
        eligible=lambda e: e.priority is P.PREEMPT or not claim_live,
    )
    reply = choice.reply(produced, "a-effect" if choice.start else None)
    assert (reply.outcome, reply.inject_id, reply.dropped_effect) == expect
    assert (reply.effect_activity_id is not None) == reply.outcome.startswith("started")
