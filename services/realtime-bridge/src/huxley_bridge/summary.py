"""A short summary of a conversation, made at disconnect and given to the
next session: the last exchanges, newest kept, bounded in length. Local and
deterministic, so it works when the socket is already gone."""

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
