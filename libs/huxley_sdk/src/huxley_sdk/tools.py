"""What a skill offers the model (tools) and what it gives back (results)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from huxley_sdk.effects import SideEffect


def _object_schema() -> dict[str, Any]:
    return {"type": "object"}


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    """One function the model may call. `parameters` is a JSON Schema object."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=_object_schema)

    def to_api_format(self) -> dict[str, Any]:
        """The OpenAI function-tool shape used in a session update."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
        }


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a tool call returns: text for the model and at most one side effect."""

    output: str
    side_effect: SideEffect | None = None
