"""The inject queue: entries waiting for their turn, `dedup_key` replacement,
time-to-live, and the memory of inject ids already accepted (so a caller's
retry is answered `duplicate` instead of becoming a second inject). Pure."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from huxley_wire.messages.focus import InjectPriority, InjectView

SEEN_LIMIT = 256


@dataclass(slots=True)
class InjectEntry:
    inject_id: str
    prompt: str
    priority: InjectPriority
    dedup_key: str | None
    skill: str | None
    wait: bool
    enqueued_at: float
    expires_at: float | None = None

    def view(self) -> InjectView:
        return InjectView(
            inject_id=self.inject_id,
            prompt=self.prompt,
            priority=self.priority,
            dedup_key=self.dedup_key,
            skill=self.skill,
            enqueued_at=self.enqueued_at,
            expires_at=self.expires_at,
        )


@dataclass(slots=True)
class FiringInject:
    """The inject whose turn holds DIALOG now."""

    entry: InjectEntry
    activity_id: str
    accepted: bool = False  # the bridge acked run_inject


class InjectQueue:
    def __init__(self, seen_limit: int = SEEN_LIMIT) -> None:
        self.entries: list[InjectEntry] = []
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.seen_limit = seen_limit

    def __iter__(self) -> Iterator[InjectEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def remember(self, inject_id: str) -> bool:
        """Record an accepted id; False if it was already known."""
        if inject_id in self.seen:
            return False
        self.seen[inject_id] = None
        while len(self.seen) > self.seen_limit:
            self.seen.popitem(last=False)
        return True

    def same_key(self, dedup_key: str | None) -> InjectEntry | None:
        if dedup_key is None:
            return None
        return next((e for e in self.entries if e.dedup_key == dedup_key), None)

    def put(self, entry: InjectEntry) -> InjectEntry | None:
        """Enqueue; a queued entry with the same dedup_key is replaced in place
        (last wins). Returns the replaced entry."""
        old = self.same_key(entry.dedup_key)
        if old is not None:
            self.entries[self.entries.index(old)] = entry
            return old
        self.entries.append(entry)
        return None

    def push_front(self, entry: InjectEntry) -> None:
        self.entries.insert(0, entry)

    def remove(self, entry: InjectEntry) -> None:
        self.entries.remove(entry)

    def first(self, accept: Callable[[InjectEntry], bool]) -> InjectEntry | None:
        return next((e for e in self.entries if accept(e)), None)

    def expire(self, now: float) -> list[InjectEntry]:
        gone = [e for e in self.entries if e.expires_at is not None and e.expires_at <= now]
        for entry in gone:
            self.entries.remove(entry)
        return gone

    def next_expiry(self) -> float | None:
        return min((e.expires_at for e in self.entries if e.expires_at is not None), default=None)
