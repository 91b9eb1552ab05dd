"""Which personas storage serves (issue 12 item 3): a request naming any other
persona token answers `not_found` and opens no database, so made-up tokens
cannot make storage create files."""

from __future__ import annotations

from pathlib import Path

from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.subjects import token

PERSONA_SUFFIXES = (".yaml", ".yml")


def configured(listed: str, personas_dir: Path) -> frozenset[str]:
    """The personas of `HUXLEY_STORAGE_PERSONAS` (comma-separated), or, unset,
    every persona file in the personas directory (its file name is its name)."""
    names = [name.strip() for name in listed.split(",") if name.strip()]
    if not names and personas_dir.is_dir():
        names = [p.stem for p in personas_dir.iterdir() if p.suffix in PERSONA_SUFFIXES and p.is_file()]
    return frozenset(token(name, "persona") for name in names)


class ServedPersonas:
    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    def require(self, persona: str) -> None:
        if persona not in self.names:
            raise WireError(ErrorCode.NOT_FOUND, f"storage does not serve persona {persona!r}")
