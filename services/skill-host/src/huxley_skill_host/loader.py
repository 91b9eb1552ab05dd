"""Finding skills (the `huxley.skills` entry-point group) and refusing tool
names that two skills both declare."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from huxley_sdk import Skill, ToolDefinition
from huxley_sdk.registry import duplicate_tool_message

ENTRY_POINT_GROUP = "huxley.skills"


class SkillLoadError(Exception):
    """A skill that can't be loaded, with a message that says why."""


def installed() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_skill(name: str, available: dict[str, EntryPoint] | None = None) -> Skill:
    """Import, build (no arguments) and check one skill by its entry-point name."""
    available = installed() if available is None else available
    entry = available.get(name)
    if entry is None:
        known = ", ".join(sorted(available)) or "none"
        raise SkillLoadError(f"no skill {name!r} is installed (entry points in {ENTRY_POINT_GROUP}: {known})")
    try:
        factory = entry.load()
        skill: Any = factory()
    except Exception as exc:
        raise SkillLoadError(
            f"skill {name!r} ({entry.value}) failed to load: {type(exc).__name__}: {exc}"
        ) from exc
    missing = [attr for attr in ("name", "tools", "handle") if not hasattr(skill, attr)]
    if missing:
        raise SkillLoadError(f"skill {name!r} ({entry.value}) is not a skill: no {', '.join(missing)}")
    if skill.name != name:
        raise SkillLoadError(
            f"entry point {name!r} builds a skill named {skill.name!r}; the names must match"
        )
    return skill  # type: ignore[no-any-return]


def read_tools(skill: Skill) -> list[ToolDefinition]:
    try:
        tools = list(skill.tools)
    except Exception as exc:
        raise SkillLoadError(
            f"skill {skill.name!r}: reading its tools raised {type(exc).__name__}: {exc}"
        ) from exc
    for tool in tools:
        if not isinstance(tool, ToolDefinition):
            raise SkillLoadError(
                f"skill {skill.name!r}: tools must be ToolDefinition, got {type(tool).__name__}"
            )
    return tools


@dataclass
class ToolOwners:
    """Which skill declared each tool name (first come, first served)."""

    owners: dict[str, str]

    def __init__(self) -> None:
        self.owners = {}

    def claim(self, skill: str, tools: list[ToolDefinition]) -> None:
        """Record the skill's tools, or refuse all of them (SkillLoadError naming
        both skills) when one is already declared by another skill."""
        names = [tool.name for tool in tools]
        seen: set[str] = set()
        for tool in names:
            owner = self.owners.get(tool)
            if owner is not None and owner != skill:
                raise SkillLoadError(duplicate_tool_message(tool, owner, skill) + f"; {skill!r} refused")
            if tool in seen:
                raise SkillLoadError(f"skill {skill!r} declares the tool {tool!r} twice")
            seen.add(tool)
        for tool in names:
            self.owners[tool] = skill
