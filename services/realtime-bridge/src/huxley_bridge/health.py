"""What the bridge's health says beyond the model socket: whether it can
still tell the house what it does. A bridge event that could not be
published (the publisher broken, a message that would not encode) makes the
bridge not ok while the last one failed and for `window_s` after a failure,
so a health poll cannot miss it. Pure: `now` is passed in."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PublishHealth:
    window_s: float = 60.0
    last_ok: bool = True
    error: str | None = None
    failed_at: float | None = None
    failures: int = 0

    def published(self, now: float) -> None:
        self.last_ok = True

    def failed(self, now: float, kind: str, error: str) -> None:
        self.last_ok = False
        self.failures += 1
        self.failed_at = now
        self.error = f"bridge.event.{kind} could not be published: {error}"

    def problem(self, now: float) -> str | None:
        recent = self.failed_at is not None and now - self.failed_at < self.window_s
        return self.error if not self.last_ok or recent else None
