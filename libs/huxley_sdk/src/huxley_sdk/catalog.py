"""A small in-memory catalog a skill can fill and search (books, stations,
contacts): fuzzy, accent- and case-insensitive matching on named fields."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any


def fold(text: str) -> str:
    """Lower case without accents, so "García" and "garcia" compare equal."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def similarity(query: str, candidate: str) -> float:
    """0..1 similarity of two already folded strings."""
    if not query or not candidate:
        return 0.0
    return SequenceMatcher(None, query, candidate).ratio()


@dataclass(frozen=True, slots=True)
class Hit:
    """One catalog item as seen by the skill: `fields` are what is searched and
    shown, `payload` is the skill's own data (a path, an id...)."""

    id: str
    score: float
    fields: dict[str, str]
    payload: dict[str, Any]


@dataclass(slots=True)
class _Entry:
    fields: dict[str, str]
    folded: tuple[str, ...]
    payload: dict[str, Any]
    order: int

    def hit(self, id: str, score: float = 1.0) -> Hit:
        return Hit(id=id, score=score, fields=self.fields, payload=self.payload)


class Catalog:
    """Items keyed by id, kept in insertion order."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._counter = 0

    async def upsert(self, id: str, fields: dict[str, str], payload: dict[str, Any] | None = None) -> None:
        """Add an item or replace it; a replaced item keeps its place."""
        previous = self._entries.get(id)
        if previous is None:
            order = self._counter
            self._counter += 1
        else:
            order = previous.order
        self._entries[id] = _Entry(
            fields=dict(fields),
            folded=tuple(fold(value) for value in fields.values()),
            payload=dict(payload or {}),
            order=order,
        )

    async def search(self, query: str, limit: int = 10) -> list[Hit]:
        """The best `limit` matches, best first (earlier items win ties); an
        item scores its best field; items scoring 0 are left out."""
        wanted = fold(query)
        if not wanted:
            return []
        scored = []
        for id, entry in self._entries.items():
            score = max((similarity(wanted, value) for value in entry.folded), default=0.0)
            if score > 0:
                scored.append((score, entry.order, id, entry))
        scored.sort(key=lambda item: (-item[0], item[1]))
        return [entry.hit(id, score) for score, _, id, entry in scored[:limit]]

    async def get(self, id: str) -> Hit | None:
        entry = self._entries.get(id)
        return entry.hit(id) if entry is not None else None

    def as_prompt_lines(
        self,
        limit: int = 50,
        header: str | None = None,
        line: Callable[[Hit], str] | None = None,
        overflow: str | None = None,
    ) -> str:
        """The catalog as text for the model's instructions: an optional
        `header:` line, one line per item (`line(hit)`, by default "- " and the
        first field), and an `overflow` note when there are more than `limit`."""
        if not self._entries:
            return ""
        render = line or _first_field_line
        lines = [f"{header}:"] if header else []
        hits = list(self)
        lines += [render(hit) for hit in hits[:limit]]
        hidden = len(hits) - limit
        if hidden > 0:
            lines.append(overflow if overflow is not None else f"(and {hidden} more, find them by searching)")
        return "\n".join(lines)

    def __iter__(self) -> Iterator[Hit]:
        ordered = sorted(self._entries.items(), key=lambda item: item[1].order)
        return iter([entry.hit(id) for id, entry in ordered])

    def __len__(self) -> int:
        return len(self._entries)


def _first_field_line(hit: Hit) -> str:
    return f"- {next(iter(hit.fields.values()), hit.id)}"
