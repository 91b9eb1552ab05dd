"""Holders' leases: when each was last heard, and when it is given up (pure).

A holder's deadline depends on what it holds (FOCUS-14):

- holding an activity it has heard of: `lease_s` (3 s) after it was last
  heard — the guarantee that a dead holder's activities go within ~3 s;
- holding nothing (or only activities still pending, of which it has not
  heard, so it cannot know to renew fast): `presence_s` (30 s). Presence is
  what says the bridge is there to run injects, and keeps a holder on the
  courier's list; a presence that outlives a dead bridge costs an
  `unavailable` answer to one `run_inject`, not a lost inject.

"Heard" is any request of the holder (renew, acquire, release, turn_end),
and also the moment focus first tells it about an activity it did not ask
for (an injected turn, a stream or claim started at a turn's end, a pending
activity promoted): from then on it must renew fast, and its clock starts
there, not at its last slow renew.
"""

from __future__ import annotations

from collections.abc import Collection


class Leases:
    def __init__(self, lease_s: float, presence_s: float) -> None:
        self.lease_s = lease_s
        self.presence_s = max(presence_s, lease_s)
        self.heard: dict[str, float] = {}

    def touch(self, holder: str, now: float) -> None:
        self.heard[holder] = max(now, self.heard.get(holder, now))

    def forget(self, holder: str) -> None:
        self.heard.pop(holder, None)

    def deadline(self, holder: str, busy: Collection[str]) -> float | None:
        heard = self.heard.get(holder)
        if heard is None:
            return None
        return heard + (self.lease_s if holder in busy else self.presence_s)

    def deadlines(self, busy: Collection[str]) -> dict[str, float]:
        return {h: t + (self.lease_s if h in busy else self.presence_s) for h, t in self.heard.items()}

    def alive(self, holder: str, now: float, busy: Collection[str]) -> bool:
        deadline = self.deadline(holder, busy)
        return deadline is not None and deadline > now

    def expire(self, now: float, busy: Collection[str]) -> list[str]:
        """Forget every holder whose deadline passed; returns them, in order."""
        gone = [h for h, deadline in self.deadlines(busy).items() if deadline <= now]
        for holder in gone:
            del self.heard[holder]
        return gone
