"""Which personas storage serves (issue 12 item 3): a request naming any other
persona token answers `not_found` and opens no database, so made-up tokens
cannot make storage create files."""

from __future__ import annotations

from pathlib import Path

from huxley_runtime.persona import PersonaError, load_persona, resolve_persona_path
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.subjects import token

PERSONA_SUFFIXES = (".yaml", ".yml")


def configured(listed: str, personas_dir: Path, persona: str = "") -> frozenset[str]:
    """The personas of `HUXLEY_STORAGE_PERSONAS` (comma-separated), or, unset,
    every persona file in the personas directory and the home's own
    `HUXLEY_PERSONA` (a name, or a persona file)."""
    names = [name.strip() for name in listed.split(",") if name.strip()]
    if not names:
        if personas_dir.is_dir():
            names = [
                name_of(p) for p in personas_dir.iterdir() if p.suffix in PERSONA_SUFFIXES and p.is_file()
            ]
        if persona:
            ref = Path(persona)
            names.append(name_of(ref) if ref.suffix in PERSONA_SUFFIXES else persona)
    return frozenset(token(name, "persona") for name in names)


def name_of(path: Path) -> str:
    """A persona file's `name:` (what the other parts put in the subject), or
    its file name when it does not load (storage still starts)."""
    try:
        return load_persona(path).name
    except PersonaError:
        return path.stem


def shared_skills(names: frozenset[str], personas_dir: Path, persona: str = "") -> dict[str, frozenset[str]]:
    """Per served persona, the skills its file says every room shares
    (`shared_skills:`); a persona whose file does not load shares none."""
    files: list[Path] = []
    if personas_dir.is_dir():
        files += [p for p in personas_dir.iterdir() if p.suffix in PERSONA_SUFFIXES and p.is_file()]
    for name in [persona, *sorted(names)]:
        if not name:
            continue
        try:
            files.append(resolve_persona_path(name, personas_dir))
        except PersonaError:
            continue
    found: dict[str, frozenset[str]] = {}
    for path in files:
        try:
            loaded = load_persona(path)
        except PersonaError:
            continue
        if loaded.name in names and loaded.shared_skills:
            found[loaded.name] = frozenset(loaded.shared_skills)
    return found


class ServedPersonas:
    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    def require(self, persona: str) -> None:
        if persona not in self.names:
            raise WireError(ErrorCode.NOT_FOUND, f"storage does not serve persona {persona!r}")
