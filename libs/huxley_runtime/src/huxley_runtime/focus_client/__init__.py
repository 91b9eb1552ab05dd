"""Talking to focus: `FocusClient` for holders, `FocusFollower` for observers.

A **holder** (the bridge, a skill-host, audio-io) owns activities. Its
`FocusClient` (`holder.py`)

- serves `focus.notify.<holder>`: `focus` and `effect_dropped` notifications
  are acked at once and handed to the handler one at a time, in arrival order
  (one queue, `notices.py`); `patience_expired` goes through the same queue
  and is acked when the handler's `on_patience_expired` returned (or after a
  time limit), so the terminal NONE always comes after the hook;
- keeps the lease: `renew` every 1 s while it holds something (focus drops
  such a holder silent for 3 s), every 10 s while it holds nothing (its
  presence lasts 30 s; FOCUS-14), and reconciles with the reply
  (`held.py`) — an activity focus no longer
  lists gets a synthesized NONE (`lease_expired`, `seq` 0) so the holder
  stops it; one focus lists that the client does not know (a previous
  incarnation's) is released;
- wraps every focus.rpc operation, retrying the idempotent ones (`inject`
  forever, with the same inject_id; `release` and `turn_end` for a while).

Notifications for activities the holder did not acquire itself (focus starts
a stream or claim for a skill-host at a turn's end, or an injected turn for
the bridge) reach the same handler; `meta` says what they are (`effect_id`,
`inject_id`).

An **observer** that only needs to know what may be heard (audio-io gating
output, the bridge watching COMMS) uses `FocusFollower` (`follower.py`): it
follows focus.event.activity, keeps the latest state per activity id, and
refreshes from `snapshot` at start, whenever it sees a gap in the event
sequence, and every few seconds if its sequence number fell behind.

    class Book:
        async def on_focus(self, change: FocusChange) -> None: ...
        async def on_patience_expired(self, activity_id: str) -> None: ...
        async def on_effect_dropped(self, effect_id: str, reason: str) -> None: ...

    client = FocusClient(nc, Subjects(site), "skill-host-1a2b3c", Book())
    await client.start()
    granted = await client.acquire(Channel.CONTENT, "audiobooks", patience_ms=1_800_000)
    ...
    await client.stop()   # releases what it still holds
"""

from huxley_runtime.focus_client.follower import ActivityStatus, ChangeCallback, FocusFollower
from huxley_runtime.focus_client.held import HeldActivity, Holdings, PendingState
from huxley_runtime.focus_client.holder import FocusClient
from huxley_runtime.focus_client.notices import FocusHandler

__all__ = [
    "ActivityStatus",
    "ChangeCallback",
    "FocusClient",
    "FocusFollower",
    "FocusHandler",
    "HeldActivity",
    "Holdings",
    "PendingState",
]
