"""A short summary of a conversation, made at disconnect and given to the
next session: the last exchanges, newest kept, bounded in length. Local and
deterministic, so it works when the socket is already gone.

Summaries chain: the one made at a disconnect starts with the summary that
session was given (its oldest lines go first when room runs out), so two
drops in a row do not lose what came before them."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

MAX_CHARS = 700
MAX_LINE_CHARS = 160


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@dataclass
class Transcript:
    """The lines of the current session (bounded)."""

    lines: deque[tuple[str, str]] = field(default_factory=lambda: deque(maxlen=60))

    def add(self, role: str, text: str) -> None:
        if text.strip():
            self.lines.append((role, text))

    def clear(self) -> None:
        self.lines.clear()

    def summary(self, max_chars: int = MAX_CHARS) -> str | None:
        picked: list[str] = []
        used = 0
        for role, text in reversed(self.lines):
            who = "The user said" if role == "user" else "You said"
            line = f'{who}: "{_shorten(text, MAX_LINE_CHARS)}"'
            if used + len(line) > max_chars and picked:
                break
            picked.append(line)
            used += len(line) + 1
        if not picked:
            return None
        return "\n".join(reversed(picked))


def chained(previous: str | None, transcript: Transcript, max_chars: int = MAX_CHARS) -> str | None:
    """This session's summary after the one it was given (None if neither has anything).
    The new lines come first in the budget; the earlier summary keeps at least a third."""
    previous = (previous or "").strip()
    reserve = min(len(previous) + 1, max_chars // 3) if previous else 0
    recent = transcript.summary(max_chars - reserve)
    if not previous:
        return recent
    if not recent:
        return previous
    room = max_chars - len(recent) - 1
    earlier = previous.splitlines()
    while earlier and len("\n".join(earlier)) > room:
        earlier.pop(0)  # the oldest context goes first
    return "\n".join([*earlier, recent])
