"""Skills by name and tools by name, in registration order."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from huxley_sdk.context import SkillContext
from huxley_sdk.skill import Skill
from huxley_sdk.tools import ToolResult


class SkillNotFoundError(Exception):
    """No registered skill offers the tool that was called."""


def duplicate_tool_message(tool: str, first: str, second: str) -> str:
    return f"tool {tool!r} is declared by both skill {first!r} and skill {second!r}"


class SkillRegistry:
    def __init__(self) -> None:
        self._skills: dict[str, Skill] = {}
        self._owner_of_tool: dict[str, str] = {}

    def register(self, skill: Skill) -> None:
        """Add a skill. A tool name another skill already declared is refused
        (ValueError naming both skills) and nothing is registered."""
        names = [tool.name for tool in skill.tools]
        for tool in names:
            owner = self._owner_of_tool.get(tool)
            if owner is not None and owner != skill.name:
                raise ValueError(duplicate_tool_message(tool, owner, skill.name))
        self._skills[skill.name] = skill
        for tool in names:
            self._owner_of_tool[tool] = skill.name

    def get_all_tool_definitions(self) -> list[dict[str, Any]]:
        return [tool.to_api_format() for skill in self._skills.values() for tool in skill.tools]

    async def dispatch(self, tool_name: str, args: dict[str, Any]) -> ToolResult:
        owner = self._owner_of_tool.get(tool_name)
        if owner is None:
            raise SkillNotFoundError(f"no skill offers the tool {tool_name!r}")
        return await self._skills[owner].handle(tool_name, args)

    def get_prompt_context(self) -> str:
        """Every skill's non-empty prompt_context, separated by blank lines."""
        parts = []
        for skill in self._skills.values():
            contribute = getattr(skill, "prompt_context", None)
            text = contribute() if callable(contribute) else ""
            if text:
                parts.append(text)
        return "\n\n".join(parts)

    async def setup_all(self, build_context: Callable[[str], SkillContext]) -> None:
        for name, skill in self._skills.items():
            setup = getattr(skill, "setup", None)
            if callable(setup):
                await setup(build_context(name))

    async def reconfigure_all(self, build_context: Callable[[str], SkillContext]) -> None:
        for name, skill in self._skills.items():
            reconfigure = getattr(skill, "reconfigure", None)
            if callable(reconfigure):
                await reconfigure(build_context(name))

    async def teardown_all(
        self, on_error: Callable[[str, BaseException], Awaitable[None]] | None = None
    ) -> None:
        """Tear every skill down; one failing never stops the others."""
        for name, skill in self._skills.items():
            teardown = getattr(skill, "teardown", None)
            if not callable(teardown):
                continue
            try:
                await teardown()
            except Exception as exc:
                if on_error is not None:
                    await on_error(name, exc)

    @property
    def skill_names(self) -> list[str]:
        return list(self._skills)

    @property
    def tool_names(self) -> list[str]:
        return list(self._owner_of_tool)

    @property
    def skills(self) -> list[Skill]:
        return list(self._skills.values())
