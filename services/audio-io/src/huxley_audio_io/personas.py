"""The personas a client may pick: what `hello.available_personas` lists and
what `?persona=` may switch to.

Each persona YAML in the personas dir (`<name>.yaml` or `<name>/persona.yaml`)
becomes {name, display_name, language} as the reference sends it; one that
does not load is left out (and logged), so a client is never offered a
persona no bridge could serve.
"""

from __future__ import annotations

from pathlib import Path

from huxley_runtime.logging import get_logger
from huxley_runtime.persona import Persona, PersonaError, load_persona

PROGRESS_KEYS = ("listening", "sent", "responding", "connecting", "connected")

log = get_logger(component="personas")


def available(personas_dir: Path) -> dict[str, Persona]:
    refs = sorted(
        {p.stem for p in personas_dir.glob("*.yaml")}
        | {p.parent.name for p in personas_dir.glob("*/persona.yaml")}
    )
    found: dict[str, Persona] = {}
    for ref in refs:
        try:
            persona = load_persona(ref, personas_dir)
        except PersonaError as exc:
            log.warning("persona_unreadable", persona=ref, error=str(exc))
            continue
        found.setdefault(persona.name, persona)
    return found


def entries(personas: dict[str, Persona]) -> list[dict[str, str]]:
    """hello's available_personas (the YAML has no display name: the reference shows the name)."""
    return [
        {"name": name, "display_name": name, "language": persona.language_code}
        for name, persona in sorted(personas.items())
    ]


def progress_strings(persona: Persona | None, language: str | None) -> dict[str, str]:
    """The persona's own words for the progress status lines, in `language`."""
    if persona is None:
        return {}
    return {k: v for k in PROGRESS_KEYS if (v := persona.ui_string(k, language))}


def pick(found: dict[str, Persona], wanted: str, personas_dir: Path) -> Persona | None:
    """The configured persona: by name among those found, else loaded from its path."""
    if wanted in found:
        return found[wanted]
    try:
        return load_persona(wanted, personas_dir)
    except PersonaError as exc:
        log.warning("persona_unreadable", persona=wanted, error=str(exc))
        return None
