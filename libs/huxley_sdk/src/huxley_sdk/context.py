"""Everything a skill receives at setup: the `SkillContext` and the shapes of
the services in it.

The runtime (our skill-host) fills every field with the real thing; the
defaults below are harmless stand-ins so a context can be built in a unit
test with only a logger, storage, secrets, a data directory and a config.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from huxley_sdk.catalog import Catalog
from huxley_sdk.effects import ClaimEndReason, ClaimHandle, InputClaim


class InjectPriority(Enum):
    NORMAL = "normal"  # waits for a quiet moment (no turn, no claim, no content)
    BLOCK_BEHIND_COMMS = "block_behind_comms"  # interrupts content, waits for a claim
    PREEMPT = "preempt"  # interrupts everything, a live claim included


# -- the services ------------------------------------------------------------------
@runtime_checkable
class SkillStorage(Protocol):
    """The skill's own key-value namespace. Values are strings; a write is
    durable when it returns; `list_settings` is sorted by key and returns keys
    without any namespace."""

    async def get_setting(self, key: str, default: str | None = None) -> str | None: ...
    async def set_setting(self, key: str, value: str) -> None: ...
    async def list_settings(self, prefix: str = "") -> list[tuple[str, str]]: ...
    async def delete_setting(self, key: str) -> None: ...


@runtime_checkable
class SkillSecrets(Protocol):
    """API keys and tokens, kept outside the database and off the bus."""

    async def get(self, key: str) -> str | None: ...
    async def set(self, key: str, value: str) -> None: ...
    async def delete(self, key: str) -> None: ...
    async def keys(self) -> list[str]: ...


class SkillLogger(Protocol):
    """Structured logging; events are namespaced by the skill and carry the
    current turn id."""

    async def ainfo(self, event: str, **kwargs: Any) -> None: ...
    async def adebug(self, event: str, **kwargs: Any) -> None: ...
    async def awarning(self, event: str, **kwargs: Any) -> None: ...
    async def aerror(self, event: str, **kwargs: Any) -> None: ...
    async def aexception(self, event: str, **kwargs: Any) -> None: ...


class InjectTurn(Protocol):
    async def __call__(
        self,
        prompt: str,
        /,
        *,
        dedup_key: str | None = None,
        priority: InjectPriority = InjectPriority.NORMAL,
    ) -> None: ...


class InjectTurnAndWait(Protocol):
    async def __call__(self, prompt: str, /, *, dedup_key: str | None = None) -> None: ...


class StartInputClaim(Protocol):
    async def __call__(self, claim: InputClaim, /) -> ClaimHandle: ...


class CancelActiveClaim(Protocol):
    async def __call__(self, /, *, reason: ClaimEndReason = ClaimEndReason.NATURAL) -> bool: ...


ClientEventHandler = Callable[[dict[str, Any]], Awaitable[None]]


class SubscribeClientEvent(Protocol):
    def __call__(self, key: str, handler: ClientEventHandler, /) -> None: ...


class EmitServerEvent(Protocol):
    async def __call__(self, event: str, data: dict[str, Any] | None = None, /) -> None: ...


# -- background tasks --------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BackgroundTaskHandle:
    """A supervised task; `cancel()` stops it and is safe to call twice."""

    name: str
    _cancel: Callable[[], None]

    def cancel(self) -> None:
        self._cancel()


@dataclass(frozen=True, slots=True)
class PermanentFailure:
    """Why a supervised task was given up (passed to on_permanent_failure)."""

    name: str
    last_exception_class: str
    last_exception_message: str
    restart_count: int
    elapsed_in_window_s: float


class BackgroundTask(Protocol):
    def __call__(
        self,
        name: str,
        coro_factory: Callable[[], Coroutine[Any, Any, None]],
        *,
        restart_on_crash: bool = True,
        max_restarts_per_hour: int = 10,
        on_permanent_failure: Callable[[PermanentFailure], Awaitable[None]] | None = None,
    ) -> BackgroundTaskHandle: ...


# -- stand-ins used when a context is built without a runtime -------------------------
async def _inject_nowhere(
    prompt: str, /, *, dedup_key: str | None = None, priority: InjectPriority = InjectPriority.NORMAL
) -> None:
    return None


async def _inject_and_wait_nowhere(prompt: str, /, *, dedup_key: str | None = None) -> None:
    return None


# Strong references, so an unsupervised task isn't garbage-collected mid-run.
_unsupervised: set[asyncio.Task[Any]] = set()


def _run_unsupervised(
    name: str,
    coro_factory: Callable[[], Coroutine[Any, Any, None]],
    *,
    restart_on_crash: bool = True,
    max_restarts_per_hour: int = 10,
    on_permanent_failure: Callable[[PermanentFailure], Awaitable[None]] | None = None,
) -> BackgroundTaskHandle:
    """One attempt, no restarts: enough for a unit test, never used by a runtime."""
    task = asyncio.get_running_loop().create_task(coro_factory(), name=f"unsupervised:{name}")
    _unsupervised.add(task)
    task.add_done_callback(_unsupervised.discard)

    def cancel() -> None:
        task.cancel()

    return BackgroundTaskHandle(name=name, _cancel=cancel)


async def _claim_that_already_ended(claim: InputClaim, /) -> ClaimHandle:
    async def ended() -> ClaimEndReason:
        return ClaimEndReason.NATURAL

    return ClaimHandle(_cancel=lambda: None, _wait_end=ended)


async def _no_claim_to_cancel(*, reason: ClaimEndReason = ClaimEndReason.NATURAL) -> bool:
    return False


def _subscribe_nowhere(key: str, handler: ClientEventHandler, /) -> None:
    return None


async def _emit_nowhere(event: str, data: dict[str, Any] | None = None, /) -> None:
    return None


# -- the context -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SkillContext:
    """What the runtime hands a skill in `setup(ctx)` and `reconfigure(ctx)`.

    - logger: structured, namespaced by the skill, with the current turn id
    - storage: the skill's own persistent key-value namespace
    - secrets: the skill's secrets (a private file, never the database)
    - persona_data_dir: where the persona keeps files (books, sounds...)
    - config: the skill's block of the persona, with the active language's
      overrides merged in
    - language: the active language code
    - inject_turn / inject_turn_and_wait: speak first (see InjectPriority)
    - background_task: supervised long-lived work
    - start_input_claim / cancel_active_claim: take the mic and speaker
    - subscribe_client_event / emit_server_event: talk with the client app
    """

    logger: SkillLogger
    storage: SkillStorage
    secrets: SkillSecrets
    persona_data_dir: Path
    config: dict[str, Any]
    language: str = "en"
    inject_turn: InjectTurn = _inject_nowhere
    inject_turn_and_wait: InjectTurnAndWait = _inject_and_wait_nowhere
    background_task: BackgroundTask = _run_unsupervised
    start_input_claim: StartInputClaim = _claim_that_already_ended
    cancel_active_claim: CancelActiveClaim = _no_claim_to_cancel
    subscribe_client_event: SubscribeClientEvent = _subscribe_nowhere
    emit_server_event: EmitServerEvent = _emit_nowhere

    def catalog(self, name: str = "default") -> Catalog:
        """A new, empty searchable catalog; the skill keeps the reference.
        Every call returns an independent catalog (`name` is for the skill's
        own bookkeeping)."""
        return Catalog()
