"""huxley_sdk: what a skill author imports.

    from huxley_sdk import Skill, SkillContext, ToolDefinition, ToolResult

Test helpers live in `huxley_sdk.testing`, sound loading in `huxley_sdk.audio`.
The package has no dependencies and no bus code: the runtime (our skill-host)
fills the `SkillContext` with the real services.
"""

from huxley_sdk.catalog import Catalog, Hit
from huxley_sdk.context import (
    BackgroundTaskHandle,
    InjectPriority,
    InjectTurn,
    InjectTurnAndWait,
    PermanentFailure,
    SkillContext,
    SkillLogger,
    SkillSecrets,
    SkillStorage,
)
from huxley_sdk.effects import (
    AudioStream,
    CancelMedia,
    ClaimBusyError,
    ClaimEndReason,
    ClaimHandle,
    ContentType,
    InputClaim,
    PlaySound,
    SetVolume,
    SideEffect,
)
from huxley_sdk.registry import SkillNotFoundError, SkillRegistry
from huxley_sdk.skill import AppState, InvalidTransitionError, Skill, WakeWordDetectorProtocol
from huxley_sdk.tools import ToolDefinition, ToolResult

__all__ = [
    "AppState",
    "AudioStream",
    "BackgroundTaskHandle",
    "CancelMedia",
    "Catalog",
    "ClaimBusyError",
    "ClaimEndReason",
    "ClaimHandle",
    "ContentType",
    "Hit",
    "InjectPriority",
    "InjectTurn",
    "InjectTurnAndWait",
    "InputClaim",
    "InvalidTransitionError",
    "PermanentFailure",
    "PlaySound",
    "SetVolume",
    "SideEffect",
    "Skill",
    "SkillContext",
    "SkillLogger",
    "SkillNotFoundError",
    "SkillRegistry",
    "SkillSecrets",
    "SkillStorage",
    "ToolDefinition",
    "ToolResult",
    "WakeWordDetectorProtocol",
]
