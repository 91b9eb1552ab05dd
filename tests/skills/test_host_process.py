"""The skill-host as its own process: a timer survives SIGKILL and fires
exactly once, and a failing skill shows in the logs and in `huxley status`
(the real CLI)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from huxley_runtime.rpc import request
from huxley_runtime.storage_client import SettingsClient
from huxley_wire.messages.common import Health, HealthRequest
from huxley_wire.permissions import Role
from huxley_wire.subjects import Subjects
from skills.bus import call_tool
from support.auth import SiteAuth
from support.services import ServiceProcess

pytestmark = pytest.mark.slow


async def healthy_skills(
    nc, site: str, instance_of: ServiceProcess, *skills: str, timeout: float = 30
) -> Health:
    """Health of the host process, once every named skill is serving."""
    async with asyncio.timeout(timeout):
        while True:
            assert instance_of.alive(), instance_of.output()
            try:
                health = await request(nc, Subjects(site).health("skill-host"), HealthRequest(), timeout=1)
            except Exception:
                health = None
            if health is not None:
                states = health.detail.get("skills", {})
                if all(states.get(s, {}).get("status") in {"ok", "degraded"} for s in skills):
                    return health
            await asyncio.sleep(0.1)


async def until(read, accept, timeout: float = 20.0):
    """Re-read (bounded) until the value is accepted: for state with no event of its own."""
    async with asyncio.timeout(timeout):
        while True:
            value = await read()
            if accept(value):
                return value
            await asyncio.sleep(0.1)


async def test_a_timer_survives_sigkill_and_fires_exactly_once(nc, site, storage, bridge, host_env, tmp_path):
    env = {**host_env, "HUXLEY_SKILLS": "timers"}
    first = ServiceProcess("huxley_skill_host", env, tmp_path / "host-1.log").start()
    try:
        await healthy_skills(nc, site, first, "timers")
        reply = await call_tool(nc, site, "timers", "set_timer", {"seconds": 4, "message": "the laundry"})
        assert json.loads(reply["output"])["ok"] is True
    finally:
        first.kill()  # SIGKILL: no teardown, no goodbye
    assert first.process is not None and first.process.returncode == -9
    kv = SettingsClient(nc, Subjects(site), "basic", "timers")
    entry = json.loads(await kv.get_setting("timer:1") or "{}")
    assert entry["message"] == "the laundry" and entry["fired_at"] is None
    assert bridge.run_injects.items == []

    second = ServiceProcess("huxley_skill_host", env, tmp_path / "host-2.log").start()
    try:
        await healthy_skills(nc, site, second, "timers")
        run = await bridge.run_injects.wait_for(lambda r: "the laundry" in r.prompt, timeout=30)
        assert run.priority == "block_behind_comms"
        await bridge.focus.turn_end(run.activity_id, inject_id=run.inject_id)
        await until(lambda: kv.list_settings("timer:"), lambda items: items == [])
        await asyncio.sleep(1.5)  # a bound: a second firing would show up here
        fired = [r for r in bridge.run_injects.items if "the laundry" in r.prompt]
        assert len({r.inject_id for r in fired}) == 1
        assert "timers.restored" in second.output()
    finally:
        assert await second.terminate() == 0


async def test_a_failing_skill_shows_in_the_logs_and_in_huxley_status(
    nc, site, nats_url, host_env, tmp_path, auth
):
    # Skills from --skills: its identity covers those three.
    identity = auth.env(Role.SKILL, skills=("echo", "brokensetup", "crashy"), name="skill-host")
    host = ServiceProcess(
        "huxley_skill_host",
        {**host_env, "HUXLEY_SKILLS": "", **identity},
        tmp_path / "host.log",
    )
    host.process = subprocess.Popen(
        [sys.executable, "-m", "huxley_skill_host", "--skills", "echo,brokensetup,crashy"],
        env={**os.environ, "PYTHONUNBUFFERED": "1", **host.env},
        stdout=(tmp_path / "host.log").open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        await healthy_skills(nc, site, host, "echo", "crashy")
        assert (await call_tool(nc, site, "echo", "echo", {"fine": 1}))["output"] == '{"fine": 1}'
        gave_up = '"crashy.background_task_failed_permanently"'
        await until(lambda: asyncio.sleep(0, host.output()), lambda out: gave_up in out)
        logs = [json.loads(line) for line in host.output().splitlines() if line.startswith("{")]
        failed = [e for e in logs if e["event"] == "skill_setup_failed"]
        assert failed and failed[0]["skill"] == "brokensetup" and failed[0]["level"] == "error"
        assert "setup cannot find its config" in failed[0]["error"]

        status = subprocess.run(
            [str(Path(sys.executable).parent / "huxley"), "status", "--nats-url", nats_url, "--json"],
            env={**os.environ, "HUXLEY_SITE": site} | SiteAuth(site).env(Role.OBSERVER),
            capture_output=True,
            text=True,
            timeout=30,
        )
        [mine] = [row for row in json.loads(status.stdout) if row["service"] == "skill-host"]
        assert mine["status"] == "degraded"
        skills = mine["detail"]["skills"]
        assert (
            skills["brokensetup"]["status"] == "failed" and "setup raised" in skills["brokensetup"]["error"]
        )
        assert skills["crashy"]["status"] == "degraded" and skills["echo"]["status"] == "ok"
    finally:
        assert await host.terminate() == 0
