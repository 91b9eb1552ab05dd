"""The skill contract, and the few framework types skills may meet."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import Enum, auto
from typing import Any, ClassVar, Protocol, runtime_checkable

from huxley_sdk.context import SkillContext
from huxley_sdk.tools import ToolDefinition, ToolResult


class AppState(Enum):
    IDLE = auto()
    CONNECTING = auto()
    CONVERSING = auto()


class InvalidTransitionError(Exception):
    """A state machine was asked for a transition it does not allow."""


@runtime_checkable
class Skill(Protocol):
    """A skill: a name, the tools it offers and a handler for them.

    Skills are built with no arguments (the runtime finds them through the
    `huxley.skills` entry-point group; the entry-point name, the persona's
    `skills:` key and `name` are the same). `tools` is read when the skill
    is registered, before `setup`. Everything else is optional:

    - `setup(ctx)` once before the first call, `reconfigure(ctx)` when the
      model session (re)connects or the language changes, `teardown()` at stop;
    - `prompt_context()`: text added to the model's instructions;
    - `config_schema`: JSON Schema of the skill's persona config (a string
      with `"format": "secret"` is a secret);
    - `data_schema_version`: version of the skill's stored data layout.
    """

    config_schema: ClassVar[dict[str, Any] | None] = None
    data_schema_version: ClassVar[int] = 1

    @property
    def name(self) -> str: ...

    @property
    def tools(self) -> list[ToolDefinition]: ...

    async def handle(self, tool_name: str, args: dict[str, Any]) -> ToolResult: ...

    async def setup(self, ctx: SkillContext) -> None:
        return None

    async def reconfigure(self, ctx: SkillContext) -> None:
        return None

    async def teardown(self) -> None:
        return None

    def prompt_context(self) -> str:
        return ""


@runtime_checkable
class WakeWordDetectorProtocol(Protocol):
    """A wake-word detector fed 16 kHz PCM16 frames."""

    on_detected: Callable[[], Awaitable[None]] | None

    @property
    def enabled(self) -> bool: ...

    @enabled.setter
    def enabled(self, value: bool) -> None: ...

    async def setup(self) -> None: ...

    async def process_frame(self, pcm_16k: bytes) -> None: ...
