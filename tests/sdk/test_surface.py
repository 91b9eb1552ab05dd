"""Our huxley_sdk exposes the public surface of huxley-sdk 0.1.1: the names,
the enum values, the dataclass fields and defaults skills rely on."""

from __future__ import annotations

import dataclasses
import inspect
from datetime import timedelta
from pathlib import Path

import pytest

import huxley_sdk
from huxley_sdk import (
    AppState,
    AudioStream,
    BackgroundTaskHandle,
    CancelMedia,
    ClaimEndReason,
    ClaimHandle,
    ContentType,
    InjectPriority,
    InputClaim,
    PermanentFailure,
    PlaySound,
    SetVolume,
    SideEffect,
    SkillContext,
    SkillNotFoundError,
    SkillRegistry,
    SkillSecrets,
    SkillStorage,
    ToolDefinition,
    ToolResult,
)
from huxley_sdk.testing import FakeSkill, MemorySecrets, MemoryStorage, RecordingLogger, make_test_context

PUBLIC = [
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


def test_every_public_name_is_exported():
    assert sorted(huxley_sdk.__all__) == sorted(PUBLIC)
    for name in PUBLIC:
        assert hasattr(huxley_sdk, name), name


def test_enum_values():
    assert {p.name: p.value for p in InjectPriority} == {
        "NORMAL": "normal",
        "BLOCK_BEHIND_COMMS": "block_behind_comms",
        "PREEMPT": "preempt",
    }
    assert {c.name: c.value for c in ContentType} == {"MIXABLE": "mixable", "NONMIXABLE": "nonmixable"}
    assert {r.name: r.value for r in ClaimEndReason} == {
        "NATURAL": "natural",
        "USER_PTT": "user_ptt",
        "PREEMPTED": "preempted",
        "ERROR": "error",
    }
    assert [s.name for s in AppState] == ["IDLE", "CONNECTING", "CONVERSING"]


def test_tool_definition_and_result():
    tool = ToolDefinition(name="t", description="d")
    assert tool.parameters == {"type": "object"}
    assert tool.to_api_format() == {
        "type": "function",
        "name": "t",
        "description": "d",
        "parameters": {"type": "object"},
    }
    assert ToolResult(output="x").side_effect is None


@pytest.mark.parametrize(
    ("effect", "kind"),
    [
        (AudioStream(factory=lambda: None), "audio_stream"),  # type: ignore[arg-type,return-value]
        (PlaySound(pcm=b"\0\0"), "play_sound"),
        (CancelMedia(), "cancel_media"),
        (SetVolume(level=40), "set_volume"),
        (InputClaim(on_mic_frame=None), "input_claim"),  # type: ignore[arg-type]
    ],
)
def test_side_effects_are_frozen_with_a_kind(effect, kind):
    assert isinstance(effect, SideEffect)
    assert type(effect).kind == kind == effect.kind
    assert dataclasses.is_dataclass(effect) and type(effect).__dataclass_params__.frozen  # type: ignore[attr-defined]
    for field in dataclasses.fields(effect):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(effect, field.name, None)


def test_audio_stream_defaults_and_patience():
    stream = AudioStream(factory=lambda: None)  # type: ignore[arg-type,return-value]
    assert (stream.on_complete_prompt, stream.completion_silence_ms, stream.content_type) == (
        None,
        0,
        ContentType.NONMIXABLE,
    )
    assert (stream.label, stream.preroll_ms, stream.on_patience_expired, stream.patience) == (
        None,
        0,
        None,
        None,
    )
    assert stream.effective_patience() == timedelta(0)
    mixable = dataclasses.replace(stream, content_type=ContentType.MIXABLE)
    assert mixable.effective_patience() == timedelta(minutes=5)
    explicit = dataclasses.replace(mixable, patience=timedelta(seconds=7))
    assert explicit.effective_patience() == timedelta(seconds=7)


def test_input_claim_defaults():
    claim = InputClaim(on_mic_frame=None)  # type: ignore[arg-type]
    assert (claim.speaker_source, claim.on_claim_end, claim.title) == (None, None, None)


async def test_handles_delegate():
    cancelled = []

    async def ended() -> ClaimEndReason:
        return ClaimEndReason.USER_PTT

    handle = ClaimHandle(_cancel=lambda: cancelled.append(1), _wait_end=ended)
    handle.cancel()
    assert cancelled == [1] and await handle.wait_end() is ClaimEndReason.USER_PTT
    task = BackgroundTaskHandle(name="n", _cancel=lambda: cancelled.append(2))
    task.cancel()
    assert cancelled == [1, 2]
    failure = PermanentFailure("n", "ValueError", "bad", 11, 12.5)
    assert failure.restart_count == 11


def test_skill_context_fields_and_defaults():
    names = [f.name for f in dataclasses.fields(SkillContext)]
    assert names == [
        "logger",
        "storage",
        "secrets",
        "persona_data_dir",
        "config",
        "language",
        "inject_turn",
        "inject_turn_and_wait",
        "background_task",
        "start_input_claim",
        "cancel_active_claim",
        "subscribe_client_event",
        "emit_server_event",
    ]
    ctx = SkillContext(
        logger=RecordingLogger(),
        storage=MemoryStorage(),
        secrets=MemorySecrets(),
        persona_data_dir=Path("/tmp"),
        config={},
    )
    assert ctx.language == "en"
    assert ctx.catalog() is not ctx.catalog()
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.language = "es"  # type: ignore[misc]


async def test_skill_context_stand_ins_do_nothing_harmful():
    ctx = make_test_context()
    await ctx.inject_turn("hi", dedup_key="k", priority=InjectPriority.PREEMPT)
    await ctx.inject_turn_and_wait("hi")
    handle = await ctx.start_input_claim(InputClaim(on_mic_frame=None))  # type: ignore[arg-type]
    assert await handle.wait_end() is ClaimEndReason.NATURAL
    assert await ctx.cancel_active_claim() is False
    ran = []

    async def work() -> None:
        ran.append(1)

    task = ctx.background_task("w", work)
    assert task.name == "w"
    ctx.subscribe_client_event("k", lambda data: None)  # type: ignore[arg-type,return-value]
    await ctx.emit_server_event("e", {"a": 1})


def test_storage_and_secrets_fakes_satisfy_the_protocols():
    assert isinstance(MemoryStorage(), SkillStorage)
    assert isinstance(MemorySecrets(), SkillSecrets)


def test_make_test_context_language_from_config():
    assert make_test_context(config={"language_code": "ES"}).language == "es"
    assert make_test_context(config={"_language": "fr"}).language == "fr"
    assert make_test_context(config={"language_code": "es"}, language="en").language == "en"
    assert make_test_context().language == "en"


def test_protocol_signatures():
    params = inspect.signature(SkillContext.catalog).parameters
    assert params["name"].default == "default"
    assert list(inspect.signature(make_test_context).parameters)[:6] == [
        "name",
        "config",
        "persona_data_dir",
        "storage",
        "secrets",
        "language",
    ]


async def test_registry_routes_and_refuses_duplicate_tools():
    registry = SkillRegistry()
    a = FakeSkill("a", tools=[ToolDefinition("one", "d"), ToolDefinition("two", "d")])
    registry.register(a)
    clash = FakeSkill("b", tools=[ToolDefinition("three", "d"), ToolDefinition("two", "d")])
    with pytest.raises(ValueError) as refused:
        registry.register(clash)
    assert "'a'" in str(refused.value) and "'b'" in str(refused.value) and "'two'" in str(refused.value)
    assert registry.skill_names == ["a"] and registry.tool_names == ["one", "two"]
    await registry.dispatch("two", {"x": 1})
    assert a.handle_calls == [("two", {"x": 1})]
    with pytest.raises(SkillNotFoundError):
        await registry.dispatch("three", {})
    assert [d["name"] for d in registry.get_all_tool_definitions()] == ["one", "two"]


async def test_registry_lifecycle_isolates_teardown_errors():
    class Broken(FakeSkill):
        async def teardown(self) -> None:
            raise RuntimeError("nope")

        def prompt_context(self) -> str:
            return "broken here"

    registry = SkillRegistry()
    broken, fine = Broken("broken", tools=[ToolDefinition("x", "d")]), FakeSkill("fine")
    registry.register(broken)
    registry.register(fine)
    await registry.setup_all(lambda name: make_test_context(name=name))
    assert broken.setup_called and fine.setup_called
    errors: list[tuple[str, str]] = []

    async def on_error(name: str, exc: BaseException) -> None:
        errors.append((name, str(exc)))

    await registry.teardown_all(on_error)
    assert errors == [("broken", "nope")] and fine.teardown_called
    assert registry.get_prompt_context() == "broken here"


async def test_fake_skill_results_by_tool():
    skill = FakeSkill(result={"a": ToolResult("A")})
    assert (await skill.handle("a", {})).output == "A"
    with pytest.raises(ValueError, match="'b'"):
        await skill.handle("b", {})
