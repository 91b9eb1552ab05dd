"""The inject outbox: an inject a skill handed over reaches focus exactly once,
even when the skill-host is SIGKILLed while focus is away (issue 13 item 3).

The folder itself on a real filesystem; then real processes: a host, the real
focus service, the test playing the bridge."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from huxley_focus.service import FocusService
from huxley_focus.settings import FocusSettings
from huxley_runtime.settings import HuxleySettings
from huxley_runtime.storage_client import SettingsClient
from huxley_skill_host.outbox import InjectOutbox, OutboxEntry
from huxley_skill_host.service import SkillHostService
from huxley_wire.messages.focus import InjectPriority
from huxley_wire.subjects import Subjects
from skills.bus import BridgeStandIn, Watch, call_tool
from skills.test_host_process import healthy_skills
from support.services import ServiceProcess, running
from support.waiting import until


def entry(inject_id: str = "i-nagger-1", *, created_at: float = 1000.0, ttl_s: float = 60.0) -> OutboxEntry:
    return OutboxEntry(
        inject_id=inject_id,
        prompt="Tell the user: nag",
        priority=InjectPriority.PREEMPT,
        dedup_key="nag",
        skill="nagger",
        created_at=created_at,
        ttl_s=ttl_s,
    )


# -- the folder and the entry ----------------------------------------------------------------------


def test_an_entry_carries_what_is_left_of_its_ttl_to_focus() -> None:
    e = entry(created_at=1000.0, ttl_s=60.0)
    assert e.message(1015.0).ttl_s == pytest.approx(45.0)
    assert not e.expired(1059.0) and e.expired(1060.0)
    assert e.remaining_s(900.0) == 60.0  # a clock that went back never lengthens it


def test_the_outbox_keeps_entries_oldest_first_and_forgets_removed_ones(tmp_path: Path) -> None:
    outbox = InjectOutbox(tmp_path / "outbox")
    outbox.record(entry("i-b", created_at=2000.0))
    outbox.record(entry("i-a", created_at=1000.0))
    outbox.record(entry("i-c", created_at=3000.0))
    outbox.remove("i-c")
    outbox.remove("i-never-there")
    entries, bad = InjectOutbox(tmp_path / "outbox").load()  # as a new process reads it
    assert [e.inject_id for e in entries] == ["i-a", "i-b"] and bad == []
    assert entries[0] == entry("i-a", created_at=1000.0)
    assert not list((tmp_path / "outbox").glob("*.tmp"))


def test_unreadable_entries_are_reported_and_never_sent(tmp_path: Path) -> None:
    outbox = InjectOutbox(tmp_path)
    outbox.record(entry("i-good"))
    (tmp_path / "i-torn.json").write_text('{"inject_id": "i-torn", "prom')
    (tmp_path / "i-other.json").write_text(entry("i-good").model_dump_json())
    entries, bad = outbox.load()
    assert [e.inject_id for e in entries] == ["i-good"]
    assert sorted(path.name for path, _ in bad) == ["i-other.json", "i-torn.json"]


# -- through the bus ----------------------------------------------------------------------------------


@asynccontextmanager
async def focus_and_bridge(nc, site: str, settings: HuxleySettings) -> AsyncIterator[BridgeStandIn]:
    async with running(FocusService, FocusSettings(**dict(settings), _env_file=None)):  # type: ignore[call-arg]
        stand_in = await BridgeStandIn(nc, site).start()
        try:
            yield stand_in
        finally:
            await stand_in.stop()


def outbox_files(settings: HuxleySettings) -> list[Path]:
    return sorted((settings.data_dir / "basic" / "outbox").glob("*.json"))


@pytest.mark.slow
async def test_an_inject_survives_a_sigkilled_host_while_focus_is_down(
    nc, site, settings, host_env, tmp_path
) -> None:
    env = {**host_env, "HUXLEY_SKILLS": "nagger", "HUXLEY_INSTANCE": "host-nag"}
    env["HUXLEY_INJECT_HANDOFF_S"] = "0.3"
    first = ServiceProcess("huxley_skill_host", env, tmp_path / "host-1.log").start()
    try:
        await healthy_skills(nc, site, first, "nagger")
        # Focus is down: inject_turn records it, waits its hand-off bound and returns.
        assert (await call_tool(nc, site, "nagger", "nag"))["output"] == "nagged"
        await until(lambda: '"focus_retry"' in first.output(), 10, "the inject to be retried")
        [recorded] = outbox_files(settings)
    finally:
        first.kill()
    assert first.process is not None and first.process.returncode == -9

    events = await Watch().start(nc, Subjects(site).focus_event("inject"))
    async with focus_and_bridge(nc, site, settings) as bridge:
        second = ServiceProcess("huxley_skill_host", env, tmp_path / "host-2.log").start()
        try:
            run = await bridge.run_injects.wait_for(lambda r: r.prompt == "Tell the user: nag", timeout=30)
            assert f"{run.inject_id}.json" == recorded.name and run.priority == "preempt"
            await bridge.focus.turn_end(run.activity_id, inject_id=run.inject_id)
            await events.wait_for(lambda e: e["inject_id"] == run.inject_id and e["status"] == "done")
            await until(lambda: outbox_files(settings) == [], 10, "the outbox to empty")
            await asyncio.sleep(1.0)  # a bound: a second delivery would show up here
            assert len(bridge.run_injects.items) == 1
            fired = [e for e in events.messages if e["status"] == "fired"]
            assert [e["inject_id"] for e in fired] == [run.inject_id]
            assert '"inject_replayed"' in second.output()
        finally:
            assert await second.terminate() == 0


async def test_a_replayed_inject_focus_already_has_is_not_spoken_again(
    nc, site, settings, host_settings
) -> None:
    """SIGKILLed after focus accepted but before the entry was removed: the
    replay is `duplicate` at focus and the entry goes."""
    async with focus_and_bridge(nc, site, settings) as bridge:
        outbox = InjectOutbox(settings.data_dir / "basic" / "outbox")
        accepted = entry("i-nagger-accepted", created_at=time.time())
        outbox.record(accepted)
        await bridge.focus.inject(accepted.prompt, inject_id=accepted.inject_id, skill="nagger")
        run = await bridge.run_injects.wait_for(lambda r: r.inject_id == accepted.inject_id)
        async with running(SkillHostService, host_settings("nagger")):
            await until(lambda: outbox_files(settings) == [], 10, "the replayed entry to be removed")
        await bridge.focus.turn_end(run.activity_id, inject_id=run.inject_id)
        await asyncio.sleep(0.5)  # a bound: a second run would show up here
        assert [r.inject_id for r in bridge.run_injects.items] == [accepted.inject_id]


async def test_an_expired_entry_is_dropped_at_replay(nc, site, settings, host_settings) -> None:
    outbox = InjectOutbox(settings.data_dir / "basic" / "outbox")
    outbox.record(entry("i-nagger-old", created_at=time.time() - 120, ttl_s=60))
    async with focus_and_bridge(nc, site, settings) as bridge:
        async with running(SkillHostService, host_settings("nagger")):
            assert outbox_files(settings) == []  # replay runs before the host is started
        assert bridge.run_injects.items == []


@pytest.mark.slow
async def test_a_timer_firing_while_focus_is_down_is_spoken_after_a_host_sigkill(
    nc, site, settings, storage, host_env, tmp_path
) -> None:
    """The published timers skill, unmodified: it stamps `fired_at` before
    inject_turn, so only the outbox can still deliver this timer."""
    env = {**host_env, "HUXLEY_SKILLS": "timers", "HUXLEY_INJECT_HANDOFF_S": "0.3"}
    kv = SettingsClient(nc, Subjects(site), "basic", "timers")
    first = ServiceProcess("huxley_skill_host", env, tmp_path / "host-1.log").start()
    try:
        async with focus_and_bridge(nc, site, settings):
            await healthy_skills(nc, site, first, "timers")
            reply = await call_tool(nc, site, "timers", "set_timer", {"seconds": 2, "message": "the laundry"})
            assert json.loads(reply["output"])["ok"] is True
        # focus is gone; the timer fires and its inject keeps being retried
        await until(lambda: '"inject_pending"' in first.output(), 15, "the timer to fire")
        entry_now = json.loads(await kv.get_setting("timer:1") or "{}")
        assert entry_now.get("fired_at") is not None or entry_now == {}
        assert len(outbox_files(settings)) == 1
    finally:
        first.kill()

    async with focus_and_bridge(nc, site, settings) as bridge:
        second = ServiceProcess("huxley_skill_host", env, tmp_path / "host-2.log").start()
        try:
            run = await bridge.run_injects.wait_for(lambda r: "the laundry" in r.prompt, timeout=30)
            assert run.priority == "block_behind_comms"
            await bridge.focus.turn_end(run.activity_id, inject_id=run.inject_id)
            await until(lambda: outbox_files(settings) == [], 10, "the outbox to empty")
            await healthy_skills(nc, site, second, "timers")
            assert await kv.list_settings("timer:") == []  # the skill itself skipped it as fired
            await asyncio.sleep(1.0)  # a bound: a second firing would show up here
            assert len([r for r in bridge.run_injects.items if "the laundry" in r.prompt]) == 1
        finally:
            assert await second.terminate() == 0
