"""The persona: who the assistant is, in one YAML file.

    version: 1
    name: basic
    voice: alloy
    language_code: en
    transcription_language: en
    timezone: Europe/London
    system_prompt: |
      ...
    constraints: [confirm_destructive, confirm_if_unclear]
    skills:            # name -> config; the order is the registration order
      system: {timezone: Europe/London}
      timers: {}
    shared_skills: []  # skills whose data all rooms share (else per room)
    ui_strings: {thinking: "One moment..."}
    i18n:
      es: {transcription_language: es, system_prompt: "...", ui_strings: {...}}

Unknown keys are refused with a message that names them. A skill's config may
carry its own `i18n: {<lang>: {...}}` block, merged over it for that language.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class PersonaError(ValueError):
    """A persona file that can't be used, with a message that says why."""


class Constraint(StrEnum):
    NEVER_SAY_NO = "never_say_no"
    CONFIRM_DESTRUCTIVE = "confirm_destructive"
    CHILD_SAFE = "child_safe"
    NO_RELIGIOUS_CONTENT = "no_religious_content"
    ECHO_SHORT_INPUT = "echo_short_input"
    CONFIRM_IF_UNCLEAR = "confirm_if_unclear"


# Our own wording of each behavioural constraint, appended to the instructions.
CONSTRAINT_SNIPPETS: dict[Constraint, str] = {
    Constraint.NEVER_SAY_NO: (
        "Never leave the user with a bare refusal: when you can't do something, "
        "offer the closest thing you can do."
    ),
    Constraint.CONFIRM_DESTRUCTIVE: (
        "Before anything that deletes, cancels or can't be undone, say what will "
        "happen and wait for a clear yes."
    ),
    Constraint.CHILD_SAFE: (
        "A child may be listening: keep language, topics and examples suitable for children."
    ),
    Constraint.NO_RELIGIOUS_CONTENT: (
        "Stay neutral on religion: don't offer religious opinions, blessings or advice."
    ),
    Constraint.ECHO_SHORT_INPUT: (
        "When the user says only a word or two, repeat what you understood before acting on it."
    ),
    Constraint.CONFIRM_IF_UNCLEAR: (
        "If you are not sure what the user asked, ask one short question instead of guessing."
    ),
}

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LanguageBlock(_Strict):
    transcription_language: str | None = None
    system_prompt: str | None = None
    ui_strings: dict[str, str] = Field(default_factory=dict)


class Persona(_Strict):
    version: Literal[1]
    name: str
    voice: str = "alloy"
    language_code: str = "en"
    transcription_language: str | None = None
    timezone: str = "UTC"
    system_prompt: str
    constraints: list[Constraint] = Field(default_factory=list)
    skills: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # Skills whose stored data every room (site) of the home shares, e.g. a
    # shopping list; any other skill's data is each room's own (docs/scale.md).
    shared_skills: list[str] = Field(default_factory=list)
    ui_strings: dict[str, str] = Field(default_factory=dict)
    i18n: dict[str, LanguageBlock] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name_is_a_token(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("name must be 1-64 of [A-Za-z0-9_-] (it is used in bus subjects)")
        return value

    @field_validator("skills", mode="before")
    @classmethod
    def _empty_skill_config(cls, value: Any) -> Any:
        # `timers:` with nothing after it is YAML null: no config.
        if isinstance(value, dict):
            return {k: ({} if v is None else v) for k, v in value.items()}
        return value

    @property
    def languages(self) -> list[str]:
        return [self.language_code, *[lang for lang in self.i18n if lang != self.language_code]]

    def _block(self, language: str | None) -> LanguageBlock | None:
        if language and language != self.language_code:
            return self.i18n.get(language)
        return None

    def system_prompt_for(self, language: str | None = None) -> str:
        block = self._block(language)
        return (block.system_prompt if block and block.system_prompt else self.system_prompt).strip()

    def transcription_language_for(self, language: str | None = None) -> str:
        block = self._block(language)
        if block and block.transcription_language:
            return block.transcription_language
        if block is not None and language:
            return language
        return self.transcription_language or self.language_code

    def ui_string(self, key: str, language: str | None = None, default: str = "") -> str:
        block = self._block(language)
        if block and key in block.ui_strings:
            return block.ui_strings[key]
        return self.ui_strings.get(key, default)

    def instructions(self, language: str | None = None) -> str:
        """System prompt plus the constraint snippets."""
        parts = [self.system_prompt_for(language)]
        parts += [CONSTRAINT_SNIPPETS[c] for c in self.constraints]
        return "\n\n".join(p for p in parts if p)

    def skill_config(self, skill: str, language: str | None = None) -> dict[str, Any]:
        """A skill's config with its `i18n.<language>` overrides merged in."""
        raw = dict(self.skills.get(skill, {}))
        per_language = raw.pop("i18n", None)
        if isinstance(per_language, dict):
            overrides = per_language.get(language or self.language_code)
            if isinstance(overrides, dict):
                raw.update(overrides)
        return raw

    def data_dir(self, base: Path) -> Path:
        return base / self.name


def resolve_persona_path(ref: str, personas_dir: Path) -> Path:
    candidate = Path(ref)
    if candidate.suffix in {".yaml", ".yml"} or candidate.is_file():
        return candidate
    for path in (personas_dir / f"{ref}.yaml", personas_dir / ref / "persona.yaml"):
        if path.is_file():
            return path
    raise PersonaError(f"persona {ref!r} not found (looked in {personas_dir})")


def _explain(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            parent = err["loc"][:-1]
            model = LanguageBlock if parent and parent[0] == "i18n" else Persona
            allowed = ", ".join(model.model_fields)
            lines.append(f"unknown key {where!r} (allowed here: {allowed})")
        else:
            lines.append(f"{where or 'file'}: {err['msg']}")
    return f"persona {source}: " + "; ".join(lines)


def parse_persona(text: str, source: str = "<string>") -> Persona:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PersonaError(f"persona {source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise PersonaError(f"persona {source}: the top level must be a mapping")
    try:
        return Persona.model_validate(data)
    except ValidationError as exc:
        raise PersonaError(_explain(exc, source)) from None


def load_persona(ref: str | Path, personas_dir: Path = Path("personas")) -> Persona:
    path = resolve_persona_path(str(ref), personas_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PersonaError(f"persona {path}: can't read it: {exc}") from None
    return parse_persona(text, str(path))
