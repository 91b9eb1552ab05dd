"""The unmodified published skills (timers, system, reminders, audiobooks
0.1.0) in a real skill-host, with the real storage and focus services on a
real nats-server; the test plays the realtime bridge."""

from __future__ import annotations

import asyncio
import json
import subprocess
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path

from huxley_runtime.storage_client import SchemaClient, SettingsClient
from huxley_skill_host.service import SkillHostService
from huxley_storage.service import StorageService
from huxley_storage.settings import StorageSettings
from huxley_wire.subjects import Subjects
from skills.bus import FrameTap, call_tool, eventually
from skills.test_host import health
from support.frames import places
from support.services import running


async def ready(host: SkillHostService, *skills: str) -> None:
    await eventually(lambda: all(host.slots[name].serving for name in skills) and host.focus.lease_ok)


async def test_timers_persist_through_storage_and_fire_block_behind_comms(
    nc, site, storage, bridge, host_settings
):
    async with running(SkillHostService, host_settings("timers,system")) as host:
        await ready(host, "timers", "system")
        reply = await call_tool(
            nc, site, "timers", "set_timer", {"seconds": 1, "message": "the tea"}, turn_id="t-1"
        )
        assert json.loads(reply["output"]) == {"timer_id": 1, "seconds": 1, "ok": True}
        kv = SettingsClient(nc, Subjects(site), "basic", "timers")
        entry = json.loads(await kv.get_setting("timer:1") or "{}")
        assert entry["message"] == "the tea" and entry["fired_at"] is None
        run = await bridge.run_injects.wait_for(lambda r: "the tea" in r.prompt)
        assert run.priority == "block_behind_comms"
        await bridge.focus.turn_end(run.activity_id, inject_id=run.inject_id)
        await eventually(lambda: not host.slots["timers"].supervisor.running)  # type: ignore[union-attr]
        assert await kv.list_settings("timer:") == []
        assert await SchemaClient(nc, Subjects(site), "basic", "timers").get_version() == 1

        # The system skill over the bus: its side effect comes back in the reply.
        volume = await call_tool(nc, site, "system", "set_volume", {"level": 35})
        assert volume["side_effect"] == {"v": 1, "kind": "set_volume", "level": 35}
        now = json.loads((await call_tool(nc, site, "system", "get_current_time"))["output"])
        assert now["timezone"] == "Europe/London"  # from the persona's config


async def test_reminders_fire_through_focus(nc, site, storage, bridge, host_settings):
    async with running(SkillHostService, host_settings("reminders")) as host:
        await ready(host, "reminders")
        when = (datetime.now(UTC) + timedelta(seconds=2)).isoformat(timespec="seconds")
        added = await call_tool(
            nc, site, "reminders", "add_reminder", {"message": "water the plants", "when_iso": when}
        )
        assert "error" not in added, added
        kv = SettingsClient(nc, Subjects(site), "basic", "reminders")
        assert any("water the plants" in value for _, value in await kv.list_settings("reminder:"))
        run = await bridge.run_injects.wait_for(lambda r: "water the plants" in r.prompt)
        assert run.priority == "block_behind_comms"
        listed = await call_tool(nc, site, "reminders", "list_reminders")
        assert "output" in listed


def make_chirp_book(path: Path, seconds: float) -> bytes:
    """A book whose every 20 ms is unique (a rising chirp), so a frame tells
    where in the book it comes from. Returns its PCM."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi",
            "-i", f"aevalsrc=0.5*sin(2*PI*(150*t+60*t*t)):s=24000:d={seconds}",
            "-ac", "1", "-ar", "24000", "-c:a", "pcm_s16le", str(path),
        ],
        check=True,
    )  # fmt: skip
    with wave.open(str(path), "rb") as wav:
        return wav.readframes(wav.getnframes())


async def test_an_audiobook_stops_when_focus_takes_the_grant_and_resumes_from_its_position(
    nc, site, storage, bridge, host_settings, tmp_path
):
    book = make_chirp_book(tmp_path / "data" / "basic" / "audiobooks" / "Test Author" / "Chirps.wav", 20)
    tap = await FrameTap().start(nc, site)
    async with running(SkillHostService, host_settings("audiobooks")) as host:
        await ready(host, "audiobooks")
        found = json.loads(
            (await call_tool(nc, site, "audiobooks", "search_audiobooks", {"query": "chirps"}))["output"]
        )
        book_id = found["results"][0]["id"]
        turn = await bridge.user_turn()
        reply = await call_tool(nc, site, "audiobooks", "play_audiobook", {"book_id": book_id})
        effect = reply["side_effect"]
        assert effect["kind"] == "audio_stream" and effect["label"] == "Chirps"
        assert effect["patience_ms"] == 30 * 60 * 1000 and effect["has_complete_prompt"]
        ended = await bridge.end_turn(turn, reply)
        stream = ended.effect_activity_id
        assert ended.outcome == "started_stream" and stream is not None
        await tap.wait_for(lambda frames: len([f for f in frames if f.stream == stream]) >= 60)  # 1.2 s
        first = tap.of(stream)
        assert first[0].pcm == book[: len(first[0].pcm)]  # from the start of the book

        # A turn takes the grant: the book pauses and saves its position.
        interruption = await bridge.user_turn()
        kv = SettingsClient(nc, Subjects(site), "basic", "audiobooks")
        key = f"position:{book_id}"
        saved = await _wait_position(kv, key, above=1.0)
        paused_at = len(tap.of(stream))
        await asyncio.sleep(0.5)  # a bound: nothing may play while the grant is away
        assert len(tap.of(stream)) == paused_at
        sent = b"".join(f.pcm for f in tap.of(stream))
        assert sent == book[: len(sent)]  # nothing skipped, nothing repeated

        # The grant comes back: a new ffmpeg from the saved position.
        await bridge.end_turn(interruption)
        await tap.wait_for(lambda frames: len([f for f in frames if f.stream == stream]) >= paused_at + 10)
        resumed = tap.of(stream)[paused_at]
        offset = book.find(resumed.pcm)
        assert offset >= 0, "the resumed audio is not from the book"
        assert abs(offset / 48_000 - saved) < 0.05, (offset / 48_000, saved)
        assert [f.seq for f in tap.of(stream)] == places(tap.of(stream))  # seq went on across the pause

        # The user presses the button: the book stops for good, its place kept.
        await bridge.focus.interrupt()
        await eventually(lambda: stream not in host.players)
        assert await _wait_position(kv, key, above=saved) > saved


async def test_an_audiobook_that_ends_asks_for_its_completion_turn(
    nc, site, storage, bridge, host_settings, tmp_path
):
    make_chirp_book(tmp_path / "data" / "basic" / "audiobooks" / "Short.wav", 0.6)
    tap = await FrameTap().start(nc, site)
    async with running(SkillHostService, host_settings("audiobooks")) as host:
        await ready(host, "audiobooks")
        turn = await bridge.user_turn()
        reply = await call_tool(nc, site, "audiobooks", "play_audiobook", {"book_id": "Short.wav"})
        stream = (await bridge.end_turn(turn, reply)).effect_activity_id
        completion = await bridge.completions.wait_for(lambda c: c.skill == "audiobooks")
        assert "finished" in completion.prompt and completion.effect_id == reply["side_effect"]["effect_id"]
        frames = tap.of(stream)
        assert frames[-1].eos and sum(len(f.pcm) for f in frames) == int(0.6 * 48_000)
        kv = SettingsClient(nc, Subjects(site), "basic", "audiobooks")
        assert float(await kv.get_setting("position:Short.wav") or "-1") == 0.0  # finished: back to the start


async def _wait_position(kv: SettingsClient, key: str, *, above: float) -> float:
    async with asyncio.timeout(15):
        while True:
            raw = await kv.get_setting(key)
            if raw is not None and float(raw) > above:
                return float(raw)
            await asyncio.sleep(0.05)


async def test_setup_waits_for_storage_and_the_skill_comes_up_with_it(nc, site, settings, host_settings):
    async with running(SkillHostService, host_settings("timers", storage_retry_s=0.3)) as host:
        await eventually(lambda: host.slots["timers"].status == "waiting")
        status = await health(nc, site)
        assert status.status == "degraded" and "retrying" in status.detail["skills"]["timers"]["error"]
        async with running(StorageService, StorageSettings(**dict(settings), _env_file=None)):  # type: ignore[call-arg]
            await eventually(lambda: host.slots["timers"].status == "ok")
            reply = await call_tool(nc, site, "timers", "set_timer", {"seconds": 60, "message": "later"})
            assert json.loads(reply["output"])["ok"] is True
