"""`huxley up` as a user runs it: nats-server plus the five services, seen
healthy by `huxley status`, traffic shown by `huxley tap`, and Ctrl-C leaving
no process behind."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import nats
import pytest

from huxley_cli.natsserver import free_port
from huxley_wire.audio import AudioFrame, encode_frame
from support.procs import alive, descendants
from support.services import REPO

HUXLEY = [sys.executable, "-m", "huxley_cli.main"]


async def run(args: list[str], env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    proc = await asyncio.create_subprocess_exec(
        *args, env=env, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    return subprocess.CompletedProcess(args, proc.returncode or 0, out.decode(), "")


@pytest.mark.slow
async def test_up_status_tap_and_clean_stop(tmp_path, site):
    port = free_port()
    env = {
        **os.environ,
        "HUXLEY_SITE": site,
        "HUXLEY_DATA_DIR": str(tmp_path / "data"),
        "HUXLEY_WEB_PORT": str(free_port()),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("HUXLEY_NATS_URL", None)
    env.pop("OPENAI_API_KEY", None)
    log = (tmp_path / "up.log").open("w")
    up = subprocess.Popen(
        [*HUXLEY, "up", "--nats-port", str(port)],
        env=env,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    tree: set[int] = set()
    try:
        run_file = tmp_path / "data" / "run" / "nats.url"
        for _ in range(200):  # `huxley status` finds the bus through this file
            if run_file.exists():
                break
            await asyncio.sleep(0.05)
        status = await run([*HUXLEY, "status", "--wait", "10"], env, timeout=40)
        assert status.returncode == 0, status.stdout + (tmp_path / "up.log").read_text()
        for service in ("storage", "focus", "realtime-bridge", "skill-host", "audio-io"):
            assert service in status.stdout
        banner = (tmp_path / "up.log").read_text()
        assert f"nats://127.0.0.1:{port}" in banner and "web client" in banner
        assert "OFFLINE MODE" in banner

        # The live stack talks too (manifests, leases...): read tap's lines until
        # both of ours went by.
        tap = await asyncio.create_subprocess_exec(
            *HUXLEY,
            "tap",
            "--no-replies",
            env=env,
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        await asyncio.wait_for(tap.stderr.readline(), 20)  # tap says where it listens once subscribed
        nc = await nats.connect(f"nats://127.0.0.1:{port}")
        await nc.publish(f"huxley.{site}.test.hello", b'{"v":1,"hello":"world"}')
        frame = AudioFrame("s1", 3, 0, b"\x00\x10" * 480)
        await nc.publish(f"huxley.{site}.audio.out.s1", encode_frame(frame))
        await nc.flush()
        await nc.close()
        wanted = ['{"v":1,"hello":"world"}', "AUDIO stream=s1 seq=3 bytes=960"]
        lines: list[str] = []
        try:
            while wanted:
                line = (await asyncio.wait_for(tap.stdout.readline(), 20)).decode()
                assert line, f"tap ended early: {lines}"
                lines.append(line)
                wanted = [w for w in wanted if w not in line]
        finally:
            tap.terminate()
            await tap.wait()

        tree = descendants(up.pid)
        assert len(tree) >= 6  # nats-server + five services (+ the simulator)
    finally:
        up.send_signal(signal.SIGINT)
        try:
            code = up.wait(30)
        finally:
            up.kill()
            log.close()
    assert code == 0, (tmp_path / "up.log").read_text()
    leftovers = [pid for pid in tree if alive(pid)]
    assert not leftovers, f"processes left behind: {leftovers}"
