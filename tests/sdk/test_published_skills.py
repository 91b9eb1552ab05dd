"""The unmodified published skills (huxley-skill-timers, -system, -reminders,
-audiobooks 0.1.0) import, construct and run against our huxley_sdk, with
the SDK's own test context (no runtime, no bus)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from huxley_sdk import AudioStream, CancelMedia, InjectPriority, SetVolume, SkillRegistry
from huxley_sdk.testing import MemoryStorage, RecordingInjector, RecordingLogger, make_test_context
from support.waiting import until

PUBLISHED = {"timers", "system", "reminders", "audiobooks"}


def test_entry_points_name_the_skills():
    found = {ep.name: ep for ep in entry_points(group="huxley.skills")}
    assert set(found) >= PUBLISHED
    for name in PUBLISHED:
        skill = found[name].load()()
        assert skill.name == name and skill.tools


def test_published_skills_register_together():
    registry = SkillRegistry()
    for name in sorted(PUBLISHED):
        registry.register(entry_points(group="huxley.skills")[name].load()())
    assert {"set_timer", "set_volume", "get_current_time", "add_reminder", "play_audiobook"} <= set(
        registry.tool_names
    )


async def test_timers_persist_and_fire_block_behind_comms():
    from huxley_skill_timers import TimersSkill

    async def no_wait(_: float) -> None:
        await asyncio.sleep(0)

    storage, injector = MemoryStorage(), RecordingInjector()
    skill = TimersSkill(sleep=no_wait)
    await skill.setup(make_test_context(name="timers", storage=storage, inject=injector))
    result = await skill.handle("set_timer", {"seconds": 60, "message": "tea"})
    assert json.loads(result.output)["ok"] is True
    calls = await injector.wait_for(1)
    assert calls[0].priority is InjectPriority.BLOCK_BEHIND_COMMS and "tea" in calls[0].prompt
    # The entry is deleted right after the inject returns.
    await until(lambda: not storage.data, what="the fired timer's entry deleted")
    await skill.teardown()


async def test_timers_restore_a_pending_entry_on_setup():
    from huxley_skill_timers import TimersSkill

    fire_at = datetime.now(UTC) + timedelta(seconds=600)
    storage = MemoryStorage(
        {"timer:7": json.dumps({"v": 1, "fire_at": fire_at.isoformat(), "message": "m", "fired_at": None})}
    )
    logger = RecordingLogger()
    skill = TimersSkill()
    await skill.setup(make_test_context(storage=storage, logger=logger))
    assert "1" in skill.prompt_context()
    assert logger.named("timers.restored")
    await skill.teardown()
    assert "timer:7" in storage.data  # a cancelled wait keeps its entry for the next boot


async def test_system_tools():
    from huxley_skill_system import SystemSkill

    skill = SystemSkill()
    await skill.setup(make_test_context(config={"timezone": "Europe/Madrid"}, language="es"))
    volume = await skill.handle("set_volume", {"level": 140})
    assert volume.side_effect == SetVolume(level=100)
    now = json.loads((await skill.handle("get_current_time", {})).output)
    assert now["timezone"] == "Europe/Madrid" and now["language"] == "es"


async def test_reminders_add_list_and_fire():
    from huxley_skill_reminders import RemindersSkill

    storage, injector = MemoryStorage(), RecordingInjector()
    skill = RemindersSkill()
    await skill.setup(make_test_context(storage=storage, inject=injector, config={"timezone": "UTC"}))
    when = (datetime.now(UTC) + timedelta(seconds=1)).isoformat(timespec="seconds")
    added = json.loads((await skill.handle("add_reminder", {"message": "call mum", "when_iso": when})).output)
    assert added.get("ok", True) is not False, added
    listed = json.loads((await skill.handle("list_reminders", {})).output)
    assert "call mum" in json.dumps(listed, ensure_ascii=False)
    assert any(key.startswith("reminder:") for key in storage.data)
    calls = await injector.wait_for(1, timeout=10)
    assert calls[0].priority is InjectPriority.BLOCK_BEHIND_COMMS and "call mum" in calls[0].prompt
    await skill.teardown()


def make_book(path: Path, seconds: int = 3) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:duration={seconds}",
            "-ac",
            "1",
            "-ar",
            "24000",
            str(path),
        ],
        check=True,
    )


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
async def test_audiobooks_search_play_and_save_position(tmp_path: Path):
    from huxley_skill_audiobooks import AudiobooksSkill

    make_book(tmp_path / "books" / "Ada Author" / "A Quiet Book.wav")
    storage = MemoryStorage()
    skill = AudiobooksSkill()
    await skill.setup(
        make_test_context(storage=storage, persona_data_dir=tmp_path, config={"library": "books"})
    )
    assert "A Quiet Book" in skill.prompt_context()
    found = json.loads((await skill.handle("search_audiobooks", {"query": "quiet book"})).output)
    assert found["results"][0]["title"] == "A Quiet Book"
    played = await skill.handle("play_audiobook", {"book_id": found["results"][0]["id"]})
    effect = played.side_effect
    assert isinstance(effect, AudioStream) and effect.label == "A Quiet Book"
    stream = effect.factory()
    got = 0
    async for chunk in stream:
        got += len(chunk)
        if got >= 9600:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    position = float(storage.data["position:Ada Author/A Quiet Book.wav"])
    assert position > 0
    stopped = await skill.handle("audiobook_control", {"action": "stop"})
    assert isinstance(stopped.side_effect, CancelMedia)
