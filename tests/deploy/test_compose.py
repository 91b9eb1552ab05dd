"""The compose deployment on a real Docker engine, authentication on:
`docker compose up` on a clean project generates the bus credentials (the
`init` one-shot), brings up nats, the five services, the simulator, one
container per skill and the autoheal watchdog, each healthy; they work
together over the bus; an anonymous client is refused; a skill container
sees none of the databases nor another skill's files; a crashed container is
restarted by Docker and a stuck (SIGSTOPped) one by autoheal; `huxley skill
add` runs a published skill from PyPI in a container of its own and `huxley
skill remove` takes it away, its credential refused.

scripts/docker-test-env.sh provides the engine (and, since no registry is
reachable here, local stand-ins for the two base images), and afterwards
removes what the test built and stops the engine it started, unless
HUXLEY_KEEP_DOCKER=1."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import nats.errors
import pytest
import websockets
from nats.aio.client import Client

from huxley_cli.natsserver import free_port
from huxley_runtime.bus import inbox_prefix_of_creds, settle
from huxley_runtime.rpc import request
from huxley_wire.codec import decode
from huxley_wire.messages.focus import InjectEvent, InjectPriority
from huxley_wire.messages.skills import ToolCall
from huxley_wire.messages.storage import KvList
from huxley_wire.subjects import Subjects
from support.services import REPO
from support.waiting import until

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1500)]

SKILL_CONTAINERS = ["skill-system", "skill-timers", "skill-reminders", "skill-audiobooks", "skill-doorbell"]
LONG_RUNNING = ["nats", "storage", "focus", "realtime-sim", "realtime-bridge", "audio-io", "autoheal"]
IMAGE_TAG = "test"
ENV_SCRIPT = str(REPO / "scripts" / "docker-test-env.sh")


def sh(args: list[str], env: dict[str, str] | None = None, timeout: float = 600) -> str:
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def runs(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


class Stack:
    def __init__(self, project: str, env: dict[str, str], nats_port: int, web_port: int, creds: Path):
        self.project = project
        self.env = env
        self.compose = ["docker", "compose", "-p", project]
        self.nats = f"nats://127.0.0.1:{nats_port}"
        self.web_port = web_port
        self.creds = creds

    def container(self, service: str) -> str:
        return sh([*self.compose, "ps", "-aq", service], self.env).strip()

    def inspect(self, service: str) -> dict[str, Any]:
        data: list[dict[str, Any]] = json.loads(sh(["docker", "inspect", self.container(service)]))
        return data[0]

    def health(self, service: str) -> str:
        state = self.inspect(service)["State"]
        return str(state.get("Health", {}).get("Status", state["Status"]))

    def volume(self, name: str) -> str:
        return f"{self.project}_{name}"

    def creds_of(self, identity: str) -> Path:
        """An identity's creds, read out of its compose volume (as root, in a
        throwaway container: the file is 0600 and owned by the service user)."""
        path = self.creds / f"{identity}.creds"
        if not path.is_file():
            text = sh(
                [
                    "docker",
                    "run",
                    "--rm",
                    "--user",
                    "0",
                    "-v",
                    f"{self.volume(f'creds-{identity}')}:/c:ro",
                    f"huxley:{IMAGE_TAG}",
                    "cat",
                    "/c/nats.creds",
                ]
            )
            path.write_text(text)
            path.chmod(0o600)
        return path

    async def connect(self, identity: str) -> Client:
        creds = self.creds_of(identity)
        return await nats.connect(
            self.nats, user_credentials=str(creds), inbox_prefix=inbox_prefix_of_creds(creds) or "_INBOX"
        )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    sh([ENV_SCRIPT], timeout=900)
    project = f"hxtest{secrets.token_hex(3)}"
    nats_port, web_port = free_port(), free_port()
    env = {
        **os.environ,
        "HUXLEY_NATS_PORT": str(nats_port),
        "HUXLEY_WEB_PORT": str(web_port),
        "HUXLEY_VERSION": IMAGE_TAG,
    }
    env.pop("OPENAI_API_KEY", None)
    env.pop("HUXLEY_NATS_CREDS", None)
    stack = Stack(project, env, nats_port, web_port, tmp_path_factory.mktemp("creds"))
    try:
        # Every huxley service shares one image: build it once.
        sh([*stack.compose, "build", "init"], env, timeout=900)
        # Waits for each dependency's health check, in order (nats, storage and
        # focus before the skills).
        sh([*stack.compose, "up", "-d"], env, timeout=600)
        yield stack
    finally:
        logs = runs([*stack.compose, "logs", "--no-color"], env)
        (REPO / "test-artifacts").mkdir(exist_ok=True)
        (REPO / "test-artifacts" / f"{project}.log").write_text(logs.stdout + logs.stderr)
        subprocess.run(
            [*stack.compose, "down", "-v", "--remove-orphans"], cwd=REPO, env=env, capture_output=True
        )
        # What the test built goes, and the engine it started stops (HUXLEY_KEEP_DOCKER=1 keeps them).
        subprocess.run(
            [ENV_SCRIPT, "down", f"huxley:{IMAGE_TAG}"], cwd=REPO, capture_output=True, timeout=300
        )


def status(stack: Stack, wait: float) -> list[dict[str, Any]]:
    """`huxley status --json` from the host, as the read-only observer."""
    env = {**stack.env, "HUXLEY_NATS_CREDS": str(stack.creds_of("observer"))}
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
            stack.nats,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=wait + 30,
    )
    result: list[dict[str, Any]] = json.loads(out.stdout)
    return result


async def all_healthy(stack: Stack, services: list[str], timeout: float = 400) -> None:
    async def check() -> bool:
        states = await asyncio.to_thread(lambda: {s: stack.health(s) for s in services})
        return all(state == "healthy" for state in states.values())

    await until(check, timeout, f"{services} healthy in Docker")


async def test_compose_up_brings_every_container_up_healthy(stack: Stack) -> None:
    await all_healthy(stack, LONG_RUNNING + SKILL_CONTAINERS)
    init = stack.inspect("init")["State"]
    assert (init["Status"], init["ExitCode"]) == ("exited", 0)
    seen = status(stack, wait=60)
    healthy = {(s["service"], s["instance"]) for s in seen if s["healthy"]}
    for service in ("storage", "focus", "realtime-bridge", "audio-io"):
        assert any(name == service for name, _ in healthy), seen
    for container in SKILL_CONTAINERS:
        assert ("skill-host", container) in healthy, seen


async def test_containers_work_together_over_the_bus_with_their_own_identities(stack: Stack) -> None:
    """A tool call (as the bridge) served in the system container; a timer set
    in the timers container, persisted by storage, whose inject reaches focus;
    the timer read back as the timers skill; the web page served by audio-io."""
    subjects = Subjects("home")
    bridge = await stack.connect("realtime-bridge")
    timers = await stack.connect("skill-timers")
    try:
        injects = await bridge.subscribe(subjects.focus_event("inject"))
        await settle(bridge)
        call = ToolCall(call_id="c1", tool="get_current_time", args={})
        reply = await request(bridge, subjects.skill_tool("system"), call, timeout=10)
        assert reply.skill == "system" and "time" in json.loads(reply.output)

        timer = ToolCall(call_id="c2", tool="set_timer", args={"seconds": 1, "message": "tea"})
        reply = await request(bridge, subjects.skill_tool("timers"), timer, timeout=10)
        assert json.loads(reply.output)["ok"] is True
        while True:
            event = decode((await injects.next_msg(timeout=30)).data, InjectEvent)
            if event.skill == "timers":
                break
        assert event.priority == InjectPriority.BLOCK_BEHIND_COMMS

        later = ToolCall(call_id="c3", tool="set_timer", args={"seconds": 3000, "message": "oven"})
        await request(bridge, subjects.skill_tool("timers"), later, timeout=10)
        stored = await request(
            timers, subjects.storage_kv("basic", "timers"), KvList(prefix="timer:"), timeout=10
        )
        assert any("oven" in value for _, value in stored.items), stored
    finally:
        await bridge.close()
        await timers.close()
    # The host's browser reaches the container through Docker's port mapping,
    # not from the container's loopback: the page asks for the pairing code.
    code = sh([*stack.compose, "exec", "-T", "audio-io", "huxley", "pair"], stack.env).strip()
    base = f"http://127.0.0.1:{stack.web_port}"
    async with httpx.AsyncClient(timeout=10) as http:
        form = await http.get(f"{base}/")
        assert form.status_code == 401 and 'action="/pair"' in form.text
        page = await http.get(f"{base}/?token={code}", follow_redirects=True)
    assert page.status_code == 200 and 'id="talk"' in page.text


async def test_an_anonymous_client_is_refused_on_the_published_port(stack: Stack) -> None:
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    with pytest.raises((nats.errors.Error, OSError)):
        await nats.connect(
            stack.nats, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=3, error_cb=on_error
        )
    assert any("authorization" in e.lower() for e in errors), errors


def test_containers_are_locked_down(stack: Stack) -> None:
    """Non-root, no capabilities, read-only root; each skill container mounts
    only its own creds and data, none of the databases; the simulator's
    controls are off; no credential is in the image."""
    mounts: dict[str, set[str]] = {}
    for service in LONG_RUNNING + SKILL_CONTAINERS:
        info = stack.inspect(service)
        mounts[service] = {m.get("Name") or m["Source"] for m in info["Mounts"]}
        if service in ("nats", "autoheal"):
            continue
        assert info["Config"]["User"] == "10001:10001", service
        assert info["HostConfig"]["CapDrop"] == ["ALL"] and not info["HostConfig"]["CapAdd"], service
        assert info["HostConfig"]["ReadonlyRootfs"] is True, service
    for skill in SKILL_CONTAINERS:
        assert mounts[skill] == {stack.volume(f"data-{skill}"), stack.volume(f"creds-{skill}")}, mounts[skill]
    holders = {service for service, names in mounts.items() if stack.volume("storage-data") in names}
    assert holders == {"storage"}
    assert not any(stack.volume("auth") in names for names in mounts.values()), "only init mounts the keys"

    exec_ = [*stack.compose, "exec", "-T"]
    assert runs([*exec_, "skill-timers", "ls", "/data/storage"], stack.env).returncode != 0
    assert runs([*exec_, "skill-timers", "cat", "/run/huxley/nats.creds"], stack.env).returncode == 0
    assert runs([*exec_, "skill-timers", "touch", "/app/x"], stack.env).returncode != 0  # read-only root
    probe = (
        "import urllib.request as u, urllib.error as e\n"
        "try: u.urlopen('http://realtime-sim:8080/control/drop')\n"
        "except e.HTTPError as x: print(x.code)"
    )
    assert sh([*exec_, "realtime-bridge", "python3", "-c", probe], stack.env).strip() == "403"

    baked = sh(
        [
            "docker",
            "run",
            "--rm",
            "--user",
            "0",
            f"huxley:{IMAGE_TAG}",
            "sh",
            "-c",
            "find / -xdev \\( -name '*.creds' -o -name '*.nk' -o -name 'nats-server.conf' \\) -print",
        ]
    )
    assert baked.strip() == "", baked


async def test_a_crashed_skill_container_is_restarted_and_the_house_keeps_serving(stack: Stack) -> None:
    container = stack.container("skill-timers")
    pid = stack.inspect("skill-timers")["State"]["Pid"]
    sh(["kill", "-9", str(pid)])  # a crash, not a stop: the engine's restart policy applies
    await all_healthy(stack, ["skill-timers", "skill-system"])
    restarts = sh(["docker", "inspect", container, "--format", "{{.RestartCount}}"]).strip()
    assert int(restarts) >= 1


async def test_a_stuck_container_is_restarted_by_autoheal_and_healthy_again(stack: Stack) -> None:
    """SIGSTOP: the process lives, Docker's restart policy sees nothing; its
    health check fails `retries` times, autoheal restarts it."""
    await all_healthy(stack, ["skill-reminders", "autoheal"])
    started = stack.inspect("skill-reminders")["State"]["StartedAt"]
    sh(["docker", "kill", "--signal", "STOP", stack.container("skill-reminders")])

    async def restarted() -> bool:
        state = (await asyncio.to_thread(stack.inspect, "skill-reminders"))["State"]
        return bool(state["StartedAt"] != started)

    await until(restarted, 300, "autoheal to restart the stopped skill-reminders")
    await all_healthy(stack, ["skill-reminders"], timeout=300)
    seen = status(stack, wait=30)
    assert ("skill-host", "skill-reminders") in {(s["service"], s["instance"]) for s in seen if s["healthy"]}
    logs = sh([*stack.compose, "logs", "--no-color", "autoheal"], stack.env)
    assert "autoheal_restarting" in logs and "skill-reminders" in logs


ADDED_PACKAGE = "huxley-skill-stocks"  # published, not in our image, and it loads with no key or config
ADDED_VERSION = "0.1.0"


def huxley_skill(stack: Stack, *args: str) -> str:
    """`huxley skill ...` on the host, against this compose project."""
    command = [sys.executable, "-m", "huxley_cli.main", "skill", *args, "--project", stack.project]
    return sh(command, stack.env, timeout=900)


def pair_code(stack: Stack) -> str:
    return sh([*stack.compose, "exec", "-T", "audio-io", "huxley", "pair"], stack.env).strip()


async def skills_state(stack: Stack) -> dict[str, dict[str, Any]]:
    """The gateway's `skills_state`, asked over its WebSocket as a paired client."""
    url = f"ws://127.0.0.1:{stack.web_port}/ws?token={await asyncio.to_thread(pair_code, stack)}"
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"type": "get_skills_state"}))
        async with asyncio.timeout(30):
            while True:
                frame = await ws.recv()
                if isinstance(frame, str) and (message := json.loads(frame))["type"] == "skills_state":
                    return {skill["name"]: skill for skill in message["skills"]}


async def test_huxley_skill_add_runs_a_published_skill_in_its_own_container_and_remove_undoes_it(
    stack: Stack,
) -> None:
    """`huxley skill add` builds the PyPI package into an image FROM ours and
    starts it, locked down like the compose skills, with its own identity:
    the gateway lists its tools and the bridge calls one. `huxley skill
    remove` takes it all away; its credential is refused from then on, and
    the reload that refuses it leaves JetStream on."""
    await all_healthy(stack, ["nats", "storage", "focus", "audio-io"])
    container = f"{stack.project}-skill-stocks"
    image = f"huxley-skill-stocks:{stack.project}"
    volumes = {stack.volume("creds-skill-stocks"), stack.volume("data-skill-stocks")}
    out = huxley_skill(stack, "add", f"{ADDED_PACKAGE}=={ADDED_VERSION}", "--quiet")
    try:
        assert f"{container} started (stocks; identity skill-stocks" in out, out

        async def listed() -> bool:
            stocks = (await skills_state(stack)).get("stocks")
            return stocks is not None and stocks["host"] == "skill-stocks" and stocks["status"] == "ok"

        await until(listed, 120, "the added stocks skill in the gateway's skills_state")
        stocks = (await skills_state(stack))["stocks"]
        assert stocks["package"] == ADDED_PACKAGE and stocks["version"] == ADDED_VERSION
        assert "get_stock_price" in stocks["tools"], stocks

        bridge = await stack.connect("realtime-bridge")
        try:
            call = ToolCall(call_id="s1", tool="get_stock_price", args={"symbol": "AAPL"})
            reply = await request(bridge, Subjects("home").skill_tool("stocks"), call, timeout=30)
            assert reply.skill == "stocks" and reply.output, reply  # no API key: it says so
        finally:
            await bridge.close()

        info = json.loads(sh(["docker", "inspect", container]))[0]
        assert info["Config"]["User"] == "10001:10001"
        assert info["HostConfig"]["CapDrop"] == ["ALL"] and not info["HostConfig"]["CapAdd"]
        assert info["HostConfig"]["ReadonlyRootfs"] is True
        assert {m.get("Name") for m in info["Mounts"]} == volumes
        assert list(info["NetworkSettings"]["Networks"]) == [f"{stack.project}_default"]
        assert info["Config"]["Labels"]["huxley.autoheal"] == "true"
        assert "huxley-skill-stocks" in sh(["docker", "image", "inspect", image])

        refused = huxley_skill_refusal(stack, "add", ADDED_PACKAGE)
        assert "already runs" in refused, refused
        creds = stack.creds_of("skill-stocks")
    finally:
        out = huxley_skill(stack, "remove", ADDED_PACKAGE)
    assert "identity skill-stocks (revoked)" in out, out

    assert runs(["docker", "inspect", container]).returncode != 0
    assert runs(["docker", "image", "inspect", image]).returncode != 0
    assert not volumes & set(sh(["docker", "volume", "ls", "-q"]).split())

    async def creds_refused() -> bool:
        try:
            nc = await nats.connect(
                stack.nats, user_credentials=str(creds), allow_reconnect=False, connect_timeout=3
            )
        except (nats.errors.Error, OSError):
            return True
        await nc.close()
        return False

    await until(creds_refused, 30, "the removed skill's credential refused")
    focus = await stack.connect("focus")
    try:
        kv = await focus.jetstream().key_value("huxley_home_focus")  # JetStream survived the reload
        await kv.status()
    finally:
        await focus.close()

    async def unlisted() -> bool:
        return "stocks" not in await skills_state(stack)

    await until(unlisted, 90, "the removed skill gone from skills_state")


def huxley_skill_refusal(stack: Stack, *args: str) -> str:
    command = [sys.executable, "-m", "huxley_cli.main", "skill", *args, "--project", stack.project]
    done = subprocess.run(command, cwd=REPO, env=stack.env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, (done.stdout, done.stderr)
    return done.stderr


async def test_install_skill_from_the_client_says_which_host_command_to_run(stack: Stack) -> None:
    """The gateway has no Docker socket in compose: the client is told why
    and what to run on the host."""
    async with websockets.connect(f"ws://127.0.0.1:{stack.web_port}/ws?token={pair_code(stack)}") as ws:
        await ws.send(json.dumps({"type": "install_skill", "package": "huxley-skill-news"}))
        async with asyncio.timeout(30):
            while True:
                frame = await ws.recv()
                if isinstance(frame, str) and (message := json.loads(frame))["type"] == "status":
                    break
    assert "`huxley skill add huxley-skill-news`" in message["message"], message
    assert "no access to the Docker engine" in message["message"]
