"""Skill tests written against PyPI's huxley-sdk 0.1.1 testing helpers pass
with ours: the logger is a MagicMock with AsyncMock methods, and the
defaults of make_test_context and FakeSkill are the same (issue 14)."""

from __future__ import annotations

from pathlib import Path
from unittest.mock import AsyncMock, MagicMock

import pytest

from huxley_sdk import ToolResult
from huxley_sdk.testing import FakeSkill, make_test_context
from huxley_skill_timers.skill import TimersSkill


async def test_the_logger_is_a_magicmock_with_asyncmock_methods() -> None:
    ctx = make_test_context()
    assert isinstance(ctx.logger, MagicMock)
    for method in ("ainfo", "adebug", "awarning", "aerror", "aexception"):
        assert isinstance(getattr(ctx.logger, method), AsyncMock)
    ctx.logger.ainfo.assert_not_called()
    await ctx.logger.ainfo("skill.started", n=1)
    ctx.logger.ainfo.assert_called_once_with("skill.started", n=1)
    ctx.logger.awarning.assert_not_awaited()
    assert ctx.logger.events() == ["skill.started"]  # and it still records, as ours did


async def test_a_published_skill_tested_the_pypi_way() -> None:
    ctx = make_test_context(name="timers", config={"language_code": "ES"})
    skill = TimersSkill()
    await skill.setup(ctx)
    ctx.logger.ainfo.assert_called()
    assert ctx.logger.ainfo.await_args_list[-1].args[0] == "timers.setup_complete"
    assert ctx.logger.ainfo.await_args_list[-1].kwargs["language"] == "es"


def test_the_defaults_are_pypis() -> None:
    config = {"stale_restore_threshold_s": 5}
    ctx = make_test_context(config=config)
    assert ctx.config is config and ctx.persona_data_dir == Path("/tmp")
    assert ctx.language == "en"


async def test_storage_and_secrets_keep_pypis_private_name() -> None:
    ctx = make_test_context()
    await ctx.storage.set_setting("k", "v")
    await ctx.secrets.set("token", "t")
    assert ctx.storage._data == {"k": "v"} and ctx.secrets._data == {"token": "t"}  # type: ignore[attr-defined]


async def test_fake_skill_as_pypis() -> None:
    fake = FakeSkill()
    assert [t.name for t in fake.tools] == ["fake_tool"]
    assert fake.tools[0].description == "A fake tool for testing"
    assert (await FakeSkill(result={}).handle("any", {})).output == '{"ok": true}'  # empty dict: default
    routed = FakeSkill(result={"a": ToolResult(output="A")})
    with pytest.raises(ValueError, match=r"no result for tool 'b'\. Registered: \['a'\]"):
        await routed.handle("b", {})
    await routed.setup(make_test_context())
    assert routed.setup_called and routed.handle_calls == [("b", {})]
