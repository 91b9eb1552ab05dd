"""Whose data a request reaches when several rooms (sites) share one storage
(issue 16, docs/scale.md "Several rooms on one bus").

Pure: a (site, persona, skill) from the subject to the persona name the rows
are kept under. By default every room has its own: the kitchen's timers are
never restored in the bedroom, and each room has its own conversation. A
persona may name skills whose data the whole home shares (`shared_skills:`,
e.g. a shopping list); those rows stay under the plain persona. Storage's own
site (HUXLEY_SITE, the first room) keeps the plain persona too, so a one-room
home's data stays where it always was when rooms are added.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# Between a persona and its room in a stored persona name. Reserved: a
# persona whose own name holds it could collide with a room's data.
SITE_SEPARATOR = "--"
MAX_NAME = 64  # the persona column's width


class ScopeError(ValueError):
    """A persona and room whose data can't be kept apart (a clear `invalid`)."""


@dataclass(frozen=True)
class Scopes:
    home: str  # storage's own site: its rooms' data under the plain persona
    # persona -> the skills whose data every room shares
    shared: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def is_shared(self, persona: str, skill: str) -> bool:
        return skill in self.shared.get(persona, frozenset())

    def settings_persona(self, site: str, persona: str, skill: str) -> str:
        """Where a skill's settings and schema version live."""
        if self.is_shared(persona, skill):
            return check_persona(persona)
        return check_persona(persona) if site == self.home else room_persona(site, persona)

    def sessions_persona(self, site: str, persona: str) -> str:
        """Where a room's conversations live (always the room's own)."""
        return check_persona(persona) if site == self.home else room_persona(site, persona)


def check_persona(persona: str) -> str:
    if SITE_SEPARATOR in persona:
        raise ScopeError(f"persona {persona!r}: '{SITE_SEPARATOR}' is reserved for rooms in storage")
    return persona


def room_persona(site: str, persona: str) -> str:
    """A room's own persona name (any room but storage's own site)."""
    check_persona(persona)
    stored = f"{persona}{SITE_SEPARATOR}{site}"
    if len(stored) > MAX_NAME:
        raise ScopeError(
            f"persona {persona!r} at site {site!r}: the stored name {stored!r} is longer than {MAX_NAME}"
        )
    return stored
