"""`make up` as a user runs it on a fresh machine: nats-server plus the five
services, all five healthy in `huxley status`, `huxley tap` printing a
readable line for every message while the stack runs, and Ctrl-C (SIGINT to
the terminal's process group) leaving no process behind (support.up)."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import time
from collections import Counter
from pathlib import Path

import nats
import pytest

from huxley_cli.auth import AuthStore
from huxley_cli.main import SERVICE_MODULES, invoked_as
from huxley_cli.natsserver import free_port
from huxley_cli.tap import format_message
from huxley_wire.audio import AudioFrame, encode_frame
from huxley_wire.codec import encode
from huxley_wire.messages.storage import KvGet
from huxley_wire.permissions import harness_identity, inbox_prefix
from huxley_wire.subjects import SERVICES, Subjects
from support.procs import alive
from support.services import REPO
from support.up import HUXLEY, MARK_VAR, marked_processes, run, running_up
from support.waiting import until

CLOCK = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} ")


def test_the_banner_names_the_cli_as_it_can_be_called_again() -> None:
    checkout = Path("/home/me/huxley")
    assert invoked_as(f"{checkout}/.venv/bin/huxley", checkout, f"{checkout}/.venv/bin/huxley") == (
        ".venv/bin/huxley"  # uv run put it on PATH for `huxley up` only
    )
    assert invoked_as("/usr/local/bin/huxley", checkout, "/usr/local/bin/huxley") == "huxley"
    assert invoked_as("/opt/venv/bin/huxley", checkout, None) == "/opt/venv/bin/huxley"
    assert invoked_as("/x/huxley_cli/main.py", checkout, None) == "huxley"


def healthy_rows(status_text: str) -> dict[str, str]:
    """service -> STATUS column of `huxley status`'s table."""
    rows = {}
    for line in status_text.splitlines()[1:]:
        cells = line.split()
        if len(cells) >= 3 and cells[0] in SERVICES:
            rows[cells[0]] = cells[2]
    return rows


@pytest.mark.slow
async def test_make_up_status_tap_and_ctrl_c(tmp_path, site):
    port = free_port()
    mark = secrets.token_hex(8)
    data = tmp_path / "data"
    env = {
        **os.environ,
        MARK_VAR: mark,
        "HUXLEY_SITE": site,
        "HUXLEY_DATA_DIR": str(data),
        "HUXLEY_NATS_PORT": str(port),
        "HUXLEY_WEB_PORT": str(free_port()),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("HUXLEY_NATS_URL", None)
    env.pop("OPENAI_API_KEY", None)
    env.pop("MAKEFLAGS", None)
    up_log = tmp_path / "up.log"
    stack: dict[int, str] = {}
    # Its own session and process group, like a terminal: Ctrl-C goes to the group.
    with running_up(["make", "--no-print-directory", "up"], env, up_log) as up:
        # `huxley up` writes where the bus is once nats-server is up: the start.
        run_file = data / "run" / "nats.url"
        await until(run_file.exists, 120, "nats.url (make up set-up or nats-server start)")
        # How fast the stack comes up is a figure of `make bench` (bench_startup), not
        # a test: a loaded machine took 12-18 s here, so the wait is generous.
        status = await run([*HUXLEY, "status", "--wait", "60"], env, timeout=90)
        assert status.returncode == 0, status.stdout + up_log.read_text()
        assert healthy_rows(status.stdout) == dict.fromkeys(SERVICES, "ok"), status.stdout
        banner = up_log.read_text()
        assert f"nats://127.0.0.1:{port}" in banner and "web client" in banner
        assert "OFFLINE MODE" in banner
        # The banner names a CLI that works from here (huxley is not on PATH).
        watch = re.search(r"watch it\s*:\s*(\S+) status", banner)
        assert watch is not None and watch.group(1) == ".venv/bin/huxley", banner
        again = await run([watch.group(1), "status"], env, timeout=40)
        assert again.returncode == 0, again.stdout
        # And what the README says to run there: `make status`.
        made = await run(["make", "--no-print-directory", "status"], env, timeout=60)
        assert made.returncode == 0, made.stdout
        assert healthy_rows(made.stdout) == dict.fromkeys(SERVICES, "ok"), made.stdout

        # Which processes the stack is, by pid: nats-server and the five services.
        stack = marked_processes(mark)
        commands = list(stack.values())
        assert any(f"nats-server -a 127.0.0.1 -p {port}" in c for c in commands), commands
        for service, module in SERVICE_MODULES.items():
            assert sum(f"-m {module}" in c for c in commands) == 1, (service, commands)

        await check_tap(env, site, port, data)
    output = up.output()
    # make re-raises the SIGINT on itself once its child is done: that is a clean stop.
    assert up.stopped_with_ctrl_c and up.code in (0, -signal.SIGINT), output
    assert "huxley: stopped" in output, output
    assert "not forked" not in output, output  # every service came from the fork server
    assert not up.leftovers, f"processes left behind: {up.leftovers}"
    assert not [pid for pid in stack if alive(pid)]


async def check_tap(env: dict[str, str], site: str, port: int, data: Path) -> None:
    """Every message on the site's subjects between two markers, as the test
    harness saw it, has its line in tap's output (mic audio aside: the observer
    does not hear the user); every line is readable; no reply is visible."""
    subjects = Subjects(site)
    tap = await asyncio.create_subprocess_exec(
        *HUXLEY,
        "tap",
        env=env,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    lines: list[str] = []

    async def read_tap() -> None:
        assert tap.stdout is not None
        while line := await tap.stdout.readline():
            lines.append(line.decode())

    reader = asyncio.create_task(read_tap())
    seen: list[tuple[str, bytes, str]] = []
    # The test harness, minted from the stack's own keys (`huxley up` ran init).
    harness = AuthStore.of(data).ensure(harness_identity(site), int(time.time()))
    nc = await nats.connect(
        f"nats://127.0.0.1:{port}", user_credentials=str(harness), inbox_prefix=inbox_prefix("harness", site)
    )
    try:
        assert tap.stderr is not None
        await asyncio.wait_for(tap.stderr.readline(), 20)  # tap says where it listens once subscribed

        async def collect(msg) -> None:
            seen.append((msg.subject, msg.data, msg.reply or ""))

        await nc.subscribe(subjects.everything, cb=collect)
        await nc.flush()

        async def marker(name: str) -> bytes:
            body = b'{"v":1,"marker":"%s"}' % name.encode()
            await nc.publish(f"{subjects.prefix}.test.marker", body)
            await nc.flush()
            await until(lambda: any(body.decode() in line for line in lines), what=f"tap showing {name}")
            return body

        start = await marker("start")  # tap is subscribed for sure from here on
        ours = [
            *[(f"{subjects.prefix}.test.event", b'{"v":1,"n":%d}' % n) for n in range(20)],
            (f"{subjects.prefix}.test.garbage", b"\xff\xfe not json"),
            (f"{subjects.prefix}.test.empty", b""),
            (
                subjects.audio_out_of("bridge", "tapcheck"),
                encode_frame(AudioFrame("tapcheck", 5, 0, b"\x00\x10" * 480)),
            ),
            (
                subjects.audio_mic_claim("skill-x"),
                encode_frame(AudioFrame("mic", 9, 0, bytes(960), eos=True)),
            ),
        ]
        for subject, payload in ours:
            await nc.publish(subject, payload)
        key = f"tap-{secrets.token_hex(4)}"
        kv = subjects.storage_kv("basic", "tapcheck")
        await nc.request(kv, encode(KvGet(key=key)), timeout=5)
        our_subjects = {subject for subject, _ in ours} | {kv}

        # The stack talks on its own too (focus leases, manifests): wait for some of it.
        def stack_talked() -> bool:
            since = seen[[data for _, data, _ in seen].index(start) + 1 :]
            return sum(s not in our_subjects for s, _, _ in since) >= 5

        await until(stack_talked, what="traffic from the stack")
        end = await marker("end")
    finally:
        await nc.close()
        tap.terminate()
        await tap.wait()
        await reader

    bodies = [data for _, data, _ in seen]
    mic = subjects.audio_mic_all()[: -len(">")]
    window = [m for m in seen[bodies.index(start) + 1 : bodies.index(end)] if not m[0].startswith(mic)]
    assert len(window) >= len([o for o in ours if not o[0].startswith(mic)]) + 1 + 5

    def without_clock(line: str) -> str:
        assert CLOCK.match(line), line
        return CLOCK.sub("", line, count=1)

    shown = Counter(without_clock(line.rstrip("\n")) for line in lines)
    wanted = Counter(
        without_clock(format_message(s, data, reply, audio=subjects.is_audio(s))) for s, data, reply in window
    )
    missing = wanted - shown
    assert not missing, f"tap printed no line for: {list(missing)[:5]}"

    # Readable: one printable line per message, with the subject (or "reply").
    for line in lines:
        text = line.rstrip("\n")
        assert text.isprintable(), text
        assert without_clock(text).split(" ", 1)[0].startswith((subjects.prefix, "reply")), text
    text = "".join(lines)
    assert "AUDIO stream=tapcheck seq=5 bytes=960" in text
    assert "AUDIO stream=mic" not in text  # the observer does not hear the user
    assert f"{subjects.prefix}.test.garbage <11 bytes, not JSON>" in text
    assert f"{subjects.prefix}.test.empty <empty>" in text
    # The request shows; its reply went to the harness's own inbox, which the observer cannot read.
    assert any(kv in line and key in line for line in lines), "no request line"
    assert not any(line.split(" ", 2)[1:2] == ["reply"] for line in lines), "a reply was visible"


def service_pids(mark: str, module: str) -> list[int]:
    return [pid for pid, cmd in marked_processes(mark).items() if f"-m {module}" in cmd]


def nats_pids(mark: str, port: int) -> list[int]:
    wanted = f"nats-server -a 127.0.0.1 -p {port}"
    return [pid for pid, cmd in marked_processes(mark).items() if wanted in cmd]


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_up_restarts_a_dead_bus_and_a_stuck_service(tmp_path, site):
    """`huxley up` keeps the house up through what only a supervisor can fix:
    nats-server SIGKILLed comes back on the same port and every service
    reconnects; a service SIGSTOPped (alive, answering nothing) is seen by the
    health watchdog, SIGKILLed and restarted, and is healthy again."""
    port = free_port()
    mark = secrets.token_hex(8)
    data = tmp_path / "data"
    env = {
        **os.environ,
        MARK_VAR: mark,
        "HUXLEY_SITE": site,
        "HUXLEY_DATA_DIR": str(data),
        "HUXLEY_NATS_PORT": str(port),
        "HUXLEY_WEB_PORT": str(free_port()),
        "PYTHONUNBUFFERED": "1",
        # Faster than the defaults (2 s, 3 misses, 20 s grace), same logic.
        "HUXLEY_WATCHDOG_INTERVAL_S": "0.5",
        "HUXLEY_WATCHDOG_FAILURES": "3",
        "HUXLEY_WATCHDOG_GRACE_S": "15",
        "HUXLEY_WATCHDOG_TIMEOUT_S": "1",
    }
    env.pop("HUXLEY_NATS_URL", None)
    env.pop("OPENAI_API_KEY", None)
    up_log = tmp_path / "up.log"

    async def all_ok(wait_s: float) -> None:
        status = await run([*HUXLEY, "status", "--wait", str(wait_s)], env, timeout=wait_s + 30)
        rows = healthy_rows(status.stdout)
        assert rows == dict.fromkeys(SERVICES, "ok"), status.stdout + up_log.read_text()

    with running_up([*HUXLEY, "up"], env, up_log) as up:
        await until((data / "run" / "nats.url").exists, timeout=60, what="huxley up starting nats-server")
        await all_ok(30)

        # The bus dies hard: the supervisor starts it again on the same port.
        [bus_pid] = nats_pids(mark, port)
        os.kill(bus_pid, signal.SIGKILL)
        await until(lambda: "nats-server is back" in up_log.read_text(), timeout=30, what="nats restart")
        assert [pid for pid in nats_pids(mark, port) if pid != bus_pid]
        await all_ok(40)

        # A service stuck, not dead: SIGSTOP. The watchdog kills and restarts it.
        [stuck] = service_pids(mark, "huxley_focus")
        os.kill(stuck, signal.SIGSTOP)
        await until(lambda: not alive(stuck), timeout=60, what="the stuck focus killed")
        await until(lambda: service_pids(mark, "huxley_focus"), timeout=30, what="focus started again")
        await all_ok(40)
        assert "stuck; killing it (SIGKILL)" in up_log.read_text()
    assert up.code == 0, up.output()
    assert not up.leftovers, f"processes left behind: {up.leftovers}"
