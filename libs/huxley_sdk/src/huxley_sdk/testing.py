"""Helpers for testing skills without a runtime.

`make_test_context()` builds a `SkillContext` from small recording fakes:
an in-memory storage and secrets, a logger, and (when you pass them) an
injector and a client-event hub that record what the skill did. Nothing here
needs a bus; each fake behaves like the real service in miniature.

The default logger has the shape of PyPI's huxley-sdk 0.1.1 testing helpers
(a `MagicMock` whose `ainfo`/`adebug`/`awarning`/`aerror`/`aexception` are
`AsyncMock`s, so `ctx.logger.ainfo.assert_called()` works), and it also keeps
every event as a `LogRecord` (`ctx.logger.records`, `.events()`, `.named()`),
as `RecordingLogger` does.

    storage, injector, client = MemoryStorage(), RecordingInjector(), ClientEvents()
    ctx = make_test_context(name="doorbell", storage=storage, inject=injector, client_events=client)
    await skill.setup(ctx)
    await client.send("doorbell.ring", {})
    assert injector.calls[0].priority is InjectPriority.BLOCK_BEHIND_COMMS
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest.mock import AsyncMock, MagicMock

from huxley_sdk.context import (
    BackgroundTask,
    ClientEventHandler,
    InjectPriority,
    SkillContext,
    SkillLogger,
    SkillSecrets,
    SkillStorage,
)
from huxley_sdk.tools import ToolDefinition, ToolResult

__all__ = [
    "ClientEvents",
    "FakeSkill",
    "InjectCall",
    "LogRecord",
    "MemorySecrets",
    "MemoryStorage",
    "RecordingInjector",
    "RecordingLogger",
    "make_test_context",
    "mock_logger",
]

_LEVELS = ("debug", "info", "warning", "error", "exception")


class MemoryStorage:
    """SkillStorage in a dict."""

    def __init__(self, initial: dict[str, str] | None = None) -> None:
        self.data: dict[str, str] = dict(initial or {})

    @property
    def _data(self) -> dict[str, str]:  # the name PyPI's in-memory storage used
        return self.data

    async def get_setting(self, key: str, default: str | None = None) -> str | None:
        return self.data.get(key, default)

    async def set_setting(self, key: str, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"storage values are strings, got {type(value).__name__}")
        self.data[key] = value

    async def list_settings(self, prefix: str = "") -> list[tuple[str, str]]:
        return sorted((k, v) for k, v in self.data.items() if k.startswith(prefix))

    async def delete_setting(self, key: str) -> None:
        self.data.pop(key, None)


class MemorySecrets:
    """SkillSecrets in a dict."""

    def __init__(self, initial: dict[str, str] | None = None) -> None:
        self.data: dict[str, str] = dict(initial or {})

    @property
    def _data(self) -> dict[str, str]:  # the name PyPI's in-memory secrets used
        return self.data

    async def get(self, key: str) -> str | None:
        return self.data.get(key)

    async def set(self, key: str, value: str) -> None:
        self.data[key] = value

    async def delete(self, key: str) -> None:
        self.data.pop(key, None)

    async def keys(self) -> list[str]:
        return sorted(self.data)


@dataclass(frozen=True)
class LogRecord:
    level: str
    event: str
    fields: dict[str, Any]


class RecordingLogger:
    """SkillLogger that keeps every event in `records`."""

    def __init__(self) -> None:
        self.records: list[LogRecord] = []

    def _keep(self, level: str, event: str, fields: dict[str, Any]) -> None:
        self.records.append(LogRecord(level, event, dict(fields)))

    async def adebug(self, event: str, **kwargs: Any) -> None:
        self._keep("debug", event, kwargs)

    async def ainfo(self, event: str, **kwargs: Any) -> None:
        self._keep("info", event, kwargs)

    async def awarning(self, event: str, **kwargs: Any) -> None:
        self._keep("warning", event, kwargs)

    async def aerror(self, event: str, **kwargs: Any) -> None:
        self._keep("error", event, kwargs)

    async def aexception(self, event: str, **kwargs: Any) -> None:
        self._keep("exception", event, kwargs)

    def events(self, level: str | None = None) -> list[str]:
        return [r.event for r in self.records if level is None or r.level == level]

    def named(self, event: str) -> list[LogRecord]:
        return [r for r in self.records if r.event == event]


def mock_logger() -> MagicMock:
    """The default test logger: PyPI's shape (a MagicMock, its five async
    methods AsyncMocks to assert on) that also records like RecordingLogger."""
    recorder = RecordingLogger()
    logger = MagicMock(name="ctx.logger")
    for level in _LEVELS:
        setattr(logger, f"a{level}", AsyncMock(side_effect=getattr(recorder, f"a{level}")))
    logger.records = recorder.records
    logger.events = recorder.events
    logger.named = recorder.named
    return logger


@dataclass(frozen=True)
class InjectCall:
    prompt: str
    dedup_key: str | None
    priority: InjectPriority
    wait: bool


class RecordingInjector:
    """inject_turn and inject_turn_and_wait that record each call (in `calls`)
    and let a test wait for the next one."""

    def __init__(self) -> None:
        self.calls: list[InjectCall] = []
        self._changed = asyncio.Condition()

    async def _record(self, call: InjectCall) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    async def inject_turn(
        self,
        prompt: str,
        /,
        *,
        dedup_key: str | None = None,
        priority: InjectPriority = InjectPriority.NORMAL,
    ) -> None:
        await self._record(InjectCall(prompt, dedup_key, priority, wait=False))

    async def inject_turn_and_wait(self, prompt: str, /, *, dedup_key: str | None = None) -> None:
        await self._record(InjectCall(prompt, dedup_key, InjectPriority.NORMAL, wait=True))

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[InjectCall]:
        """Wait until at least `count` injects were recorded."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.calls) >= count)
        return list(self.calls)


class ClientEvents:
    """subscribe_client_event / emit_server_event without a client: `send()`
    plays the client, `emitted` keeps what the skill sent back."""

    def __init__(self) -> None:
        self.handlers: dict[str, list[ClientEventHandler]] = {}
        self.emitted: list[tuple[str, dict[str, Any]]] = []

    def subscribe(self, key: str, handler: ClientEventHandler, /) -> None:
        self.handlers.setdefault(key, []).append(handler)

    async def emit(self, event: str, data: dict[str, Any] | None = None, /) -> None:
        self.emitted.append((event, dict(data or {})))

    async def send(self, key: str, data: dict[str, Any] | None = None) -> None:
        """Deliver a client event to every handler subscribed to `key`."""
        for handler in list(self.handlers.get(key, [])):
            await handler(dict(data or {}))


def make_test_context(
    *,
    name: str = "test",
    config: dict[str, Any] | None = None,
    persona_data_dir: Path | None = None,
    storage: SkillStorage | None = None,
    secrets: SkillSecrets | None = None,
    language: str | None = None,
    logger: SkillLogger | None = None,
    inject: RecordingInjector | None = None,
    client_events: ClientEvents | None = None,
    background_task: BackgroundTask | None = None,
) -> SkillContext:
    """A SkillContext for unit tests.

    Defaults, as PyPI's huxley-sdk 0.1.1: `mock_logger()` (a MagicMock with
    AsyncMock methods, recording too), an empty `MemoryStorage` and
    `MemorySecrets`, `/tmp` as persona data dir, `{}` as config (a config you
    pass is used as it is, not copied), and the language from `config["_language"]` or
    `config["language_code"]` when present, else "en". Pass `inject` and
    `client_events` to record injected turns and client traffic; the other
    fields keep the SDK's stand-ins (one-attempt background tasks, a claim
    that ends at once). `name` is accepted for symmetry with the runtime.
    """
    cfg = config if config is not None else {}
    if language is None:
        hint = cfg.get("_language") or cfg.get("language_code")
        language = hint.lower() if isinstance(hint, str) and hint else "en"
    wiring: dict[str, Any] = {}
    if inject is not None:
        wiring["inject_turn"] = inject.inject_turn
        wiring["inject_turn_and_wait"] = inject.inject_turn_and_wait
    if client_events is not None:
        wiring["subscribe_client_event"] = client_events.subscribe
        wiring["emit_server_event"] = client_events.emit
    if background_task is not None:
        wiring["background_task"] = background_task
    return SkillContext(
        logger=logger if logger is not None else mock_logger(),
        storage=storage if storage is not None else MemoryStorage(),
        secrets=secrets if secrets is not None else MemorySecrets(),
        persona_data_dir=persona_data_dir or Path("/tmp"),  # PyPI's default
        config=cfg,
        language=language,
        **wiring,
    )


class FakeSkill:
    """A minimal skill that records what happens to it.

    `result` is one ToolResult for every call, or a dict tool name ->
    ToolResult (a call to a tool missing from it raises, naming the ones
    that exist). `handle_calls`, `setup_called`, `setup_context` and
    `teardown_called` are there to assert on.
    """

    def __init__(
        self,
        name: str = "fake",
        tools: list[ToolDefinition] | None = None,
        result: ToolResult | dict[str, ToolResult] | None = None,
    ) -> None:
        self._name = name
        self._tools = tools or [
            ToolDefinition(
                name="fake_tool",
                description="A fake tool for testing",
                parameters={"type": "object", "properties": {"arg": {"type": "string"}}},
            )
        ]
        # `or`, as PyPI's: an empty dict means the default result too.
        self._result = result or ToolResult(output='{"ok": true}')
        self.handle_calls: list[tuple[str, dict[str, Any]]] = []
        self.setup_called = False
        self.setup_context: SkillContext | None = None
        self.teardown_called = False

    @property
    def name(self) -> str:
        return self._name

    @property
    def tools(self) -> list[ToolDefinition]:
        return self._tools

    async def handle(self, tool_name: str, args: dict[str, Any]) -> ToolResult:
        self.handle_calls.append((tool_name, args))
        if isinstance(self._result, dict):
            if tool_name not in self._result:
                registered = list(self._result)
                raise ValueError(
                    f"FakeSkill '{self._name}': no result for tool '{tool_name}'. Registered: {registered}"
                )
            return self._result[tool_name]
        return self._result

    async def setup(self, ctx: SkillContext) -> None:
        self.setup_called = True
        self.setup_context = ctx

    async def teardown(self) -> None:
        self.teardown_called = True
