"""What a holder holds, and renew reconciliation (pure: times are passed in)."""

from __future__ import annotations

from huxley_runtime.focus_client import Holdings
from huxley_wire.messages.focus import ActivityMeta, Behavior, Channel, EndReason, FocusChange, FocusState


def change(activity_id: str, state: FocusState) -> FocusChange:
    return FocusChange(
        seq=1,
        activity_id=activity_id,
        channel=Channel.CONTENT,
        interface="book",
        state=state,
        behavior=Behavior.PRIMARY if state is FocusState.FOREGROUND else Behavior.MUST_STOP,
        gain=1.0 if state is FocusState.FOREGROUND else 0.0,
        ramp_ms=0,
    )


def test_an_ended_activity_is_not_brought_back_by_a_late_acquire_reply() -> None:
    held = Holdings()
    held.learn(change("a-1", FocusState.FOREGROUND), now=1.0)
    held.learn(change("a-1", FocusState.NONE), now=2.0)
    held.acquired("a-1", Channel.CONTENT, "book", FocusState.FOREGROUND, ActivityMeta(), now=3.0)
    assert held.state_of("a-1") is None


def test_reconcile_stops_what_focus_dropped_and_releases_what_it_does_not_know() -> None:
    held = Holdings()
    held.acquired("kept", Channel.CONTENT, "book", FocusState.FOREGROUND, ActivityMeta(), now=1.0)
    held.acquired("dropped", Channel.DIALOG, "turn", "pending", ActivityMeta(kind="turn"), now=1.0)
    held.acquired("too-new", Channel.ALERT, "timer", "pending", ActivityMeta(), now=5.0)
    found = held.reconcile(["kept", "stale"], sent_at=4.0, release_unknown=True)
    assert [(n.activity_id, n.state, n.reason, n.seq) for n in found.lost] == [
        ("dropped", FocusState.NONE, EndReason.LEASE_EXPIRED, 0)
    ]
    assert found.lost[0].meta.kind == "turn"
    assert found.unknown == ["stale"]
    assert sorted(held.activities) == ["kept", "too-new"]  # learnt after the renew left: kept


def test_unknown_ids_are_left_alone_while_an_acquire_raced_the_renew() -> None:
    held = Holdings()
    found = held.reconcile(["mine-soon"], sent_at=4.0, release_unknown=False)
    assert found.unknown == [] and found.lost == []
