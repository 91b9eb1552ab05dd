"""The compose deployment on a real Docker engine: `docker compose up`
brings up nats, the five services and one container per skill; they find
each other on the bus; a crashed skill container is restarted by the engine
while the rest of the house keeps serving.

scripts/docker-test-env.sh provides the engine (and, since no registry is
reachable here, local stand-ins for the two base images)."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys

import httpx
import nats
import pytest

from huxley_cli.natsserver import free_port
from huxley_runtime.bus import settle
from huxley_runtime.rpc import request
from huxley_wire.codec import decode
from huxley_wire.messages.focus import InjectEvent, InjectPriority
from huxley_wire.messages.skills import ToolCall
from huxley_wire.messages.storage import KvList
from huxley_wire.subjects import Subjects
from support.services import REPO
from support.waiting import until

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1200)]

SKILL_CONTAINERS = ["skill-system", "skill-timers", "skill-reminders", "skill-audiobooks", "skill-doorbell"]


def sh(args: list[str], env: dict[str, str] | None = None, timeout: float = 600) -> str:
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


@pytest.fixture(scope="module")
def stack():
    import os

    sh([str(REPO / "scripts" / "docker-test-env.sh")], timeout=900)
    project = f"hxtest{secrets.token_hex(3)}"
    nats_port, web_port = free_port(), free_port()
    env = {**os.environ, "HUXLEY_NATS_PORT": str(nats_port), "HUXLEY_WEB_PORT": str(web_port)}
    env.pop("OPENAI_API_KEY", None)
    compose = ["docker", "compose", "-p", project]
    try:
        sh([*compose, "build"], env, timeout=900)
        sh([*compose, "up", "-d"], env, timeout=300)
        yield {
            "compose": compose,
            "env": env,
            "nats": f"nats://127.0.0.1:{nats_port}",
            "web_port": web_port,
            "project": project,
        }
    finally:
        logs = subprocess.run(
            [*compose, "logs", "--no-color"], cwd=REPO, env=env, capture_output=True, text=True
        )
        (REPO / "test-artifacts").mkdir(exist_ok=True)
        (REPO / "test-artifacts" / f"{project}.log").write_text(logs.stdout + logs.stderr)
        subprocess.run([*compose, "down", "-v", "--remove-orphans"], cwd=REPO, env=env, capture_output=True)


def status(stack: dict, wait: float) -> list[dict]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "huxley_cli.main",
            "status",
            "--json",
            "--wait",
            str(wait),
            "--nats-url",
            stack["nats"],
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=wait + 30,
    )
    return json.loads(out.stdout)


async def wait_for(stack: dict, instances: set[tuple[str, str]], timeout: float = 120) -> list[dict]:
    """Ask `huxley status` until every (service, instance) is healthy."""

    async def all_healthy() -> list[dict] | None:
        seen = await asyncio.to_thread(status, stack, wait=5)
        healthy = {(s["service"], s["instance"]) for s in seen if s["healthy"]}
        return seen if instances <= healthy else None

    seen: list[dict] = await until(all_healthy, timeout, f"{sorted(instances)} healthy in `huxley status`")
    return seen


def test_compose_up_brings_every_service_and_skill_container(stack):
    seen = status(stack, wait=90)
    healthy = {(s["service"], s["instance"]) for s in seen if s["healthy"]}
    for service in ("storage", "focus", "realtime-bridge", "audio-io"):
        assert any(name == service for name, _ in healthy), seen
    for container in SKILL_CONTAINERS:
        assert ("skill-host", container) in healthy, seen


async def test_containers_work_together_over_the_bus(stack):
    """A tool call served in the system container; a timer set in the timers
    container, persisted by the storage container, whose inject reaches the
    focus container; the web client page served by audio-io."""
    subjects = Subjects("home")
    nc = await nats.connect(stack["nats"])
    try:
        injects = await nc.subscribe(subjects.focus_event("inject"))
        await settle(nc)
        call = ToolCall(call_id="c1", tool="get_current_time", args={})
        reply = await request(nc, subjects.skill_tool("system"), call, timeout=10)
        assert reply.skill == "system" and "time" in json.loads(reply.output)

        timer = ToolCall(call_id="c2", tool="set_timer", args={"seconds": 1, "message": "tea"})
        reply = await request(nc, subjects.skill_tool("timers"), timer, timeout=10)
        assert json.loads(reply.output)["ok"] is True
        while True:
            event = decode((await injects.next_msg(timeout=30)).data, InjectEvent)
            if event.skill == "timers":
                break
        assert event.priority == InjectPriority.BLOCK_BEHIND_COMMS

        later = ToolCall(call_id="c3", tool="set_timer", args={"seconds": 3000, "message": "oven"})
        await request(nc, subjects.skill_tool("timers"), later, timeout=10)
        stored = await request(
            nc, subjects.storage_kv("basic", "timers"), KvList(prefix="timer:"), timeout=10
        )
        assert any("oven" in value for _, value in stored.items), stored
    finally:
        await nc.close()
    # The host's browser reaches the container through Docker's port mapping,
    # not from the container's loopback: the page asks for the pairing code.
    code = sh([*stack["compose"], "exec", "-T", "audio-io", "huxley", "pair"], stack["env"]).strip()
    base = f"http://127.0.0.1:{stack['web_port']}"
    async with httpx.AsyncClient(timeout=10) as http:
        form = await http.get(f"{base}/")
        assert form.status_code == 401 and 'action="/pair"' in form.text
        page = await http.get(f"{base}/?token={code}", follow_redirects=True)
    assert page.status_code == 200 and 'id="talk"' in page.text


async def test_a_crashed_skill_container_is_restarted_and_the_house_keeps_serving(stack):
    compose, env = stack["compose"], stack["env"]
    container = sh([*compose, "ps", "-q", "skill-timers"], env).strip()
    pid = sh(["docker", "inspect", container, "--format", "{{.State.Pid}}"]).strip()
    sh(["kill", "-9", pid])  # a crash, not a stop: the engine's restart policy applies
    seen = await wait_for(stack, {("skill-host", "skill-timers"), ("skill-host", "skill-system")})
    restarts = sh(["docker", "inspect", container, "--format", "{{.RestartCount}}"]).strip()
    assert int(restarts) >= 1
    healthy = {(s["service"], s["instance"]) for s in seen if s["healthy"]}
    assert ("skill-host", "skill-timers") in healthy, seen
    assert ("skill-host", "skill-system") in healthy, seen
