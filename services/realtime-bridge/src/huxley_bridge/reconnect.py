"""When to try the model socket again: 1, 3, 10, 30, then every 60 s, with
an audible cue from the 4th attempt. A connection that held for a while
resets the count; one that drops at once does not (no 1 s flapping)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_DELAYS_S = (1.0, 3.0, 10.0, 30.0, 60.0)
# The local simulator is started beside us by `huxley up`: while it is still
# importing, try again quickly before falling back to the usual delays.
LOCAL_FIRST_DELAYS_S = (0.05, 0.1, 0.2, 0.5)


@dataclass
class ReconnectSchedule:
    delays_s: tuple[float, ...] = DEFAULT_DELAYS_S
    cue_from_attempt: int = 4
    stable_after_s: float = 60.0
    attempt: int = 0  # the reconnect attempt coming up (0: none pending)
    connected_at: float | None = None

    @classmethod
    def for_endpoint(cls, delays_s: tuple[float, ...], *, local: bool) -> ReconnectSchedule:
        if not local:
            return cls(delays_s=delays_s)
        return cls(delays_s=LOCAL_FIRST_DELAYS_S + delays_s, cue_from_attempt=4 + len(LOCAL_FIRST_DELAYS_S))

    def succeeded(self, now: float) -> None:
        self.connected_at = now

    def lost(self, now: float) -> float:
        """A connect failed or the socket dropped: the delay before the next attempt."""
        held = self.connected_at is not None and now - self.connected_at >= self.stable_after_s
        self.connected_at = None
        self.attempt = 1 if held else self.attempt + 1
        return self.delays_s[min(self.attempt, len(self.delays_s)) - 1]

    def reset(self) -> None:
        self.attempt = 0
        self.connected_at = None

    @property
    def cue(self) -> bool:
        """The coming attempt plays the "still trying" cue."""
        return self.attempt >= self.cue_from_attempt
