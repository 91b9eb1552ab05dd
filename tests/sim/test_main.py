"""`python -m huxley_realtime_sim` as `huxley up` runs it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from openai import AsyncOpenAI

from huxley_cli.natsserver import free_port


async def test_module_serves_the_default_rules(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "HUXLEY_SIM_PORT": str(port), "HUXLEY_SIM_VOICE": "tones", "HUXLEY_SIM_SPEED": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "huxley_realtime_sim"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # the banner comes once it listens
            if b"listening on" in line:
                url = re.search(rb"ws://\S+", line).group().decode()  # type: ignore[union-attr]
                break
        assert url == f"ws://127.0.0.1:{port}/v1"
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"http://127.0.0.1:{port}/health")).status_code == 200
        client = AsyncOpenAI(api_key="offline", websocket_base_url=url)
        async with client.realtime.connect(model="gpt-realtime") as conn:
            await conn.conversation.item.create(
                item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]}
            )
            await conn.response.create()
            async for event in conn:
                if event.type == "response.output_audio_transcript.done":
                    assert event.transcript == "Hello! How can I help?"
                    break
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_bad_rule_file_is_one_clear_message(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules: [{name: x, say: hi}]\n")
    env = {**os.environ, "HUXLEY_SIM_PORT": "0", "HUXLEY_SIM_RULES": str(rules)}
    done = subprocess.run(
        [sys.executable, "-m", "huxley_realtime_sim"], env=env, capture_output=True, timeout=30, check=False
    )
    assert done.returncode == 2
    assert b"needs text, regex or marker" in done.stderr


def test_options_win_over_the_environment_and_sigint_stops_cleanly(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text('speed: 0\nrules: [{name: only, text: ["hi"], say: "hello"}]\n')
    # A port the environment gets wrong: the option replaces it before it is checked.
    env = {**os.environ, "HUXLEY_SIM_PORT": "99999", "HUXLEY_SIM_VOICE": "tones"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "huxley_realtime_sim", "--port", "0", "--rules", str(rules)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert proc.stdout is not None
        banner = b""
        for line in proc.stdout:
            if b"listening on" in line:
                banner = line
                break
        assert re.search(rb"ws://127\.0\.0\.1:\d+/v1 \(1 rules\)", banner), banner
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0


def test_a_bad_setting_is_one_clear_message() -> None:
    env = {**os.environ, "HUXLEY_SIM_PORT": "0", "HUXLEY_SIM_VOICE": "robot"}
    done = subprocess.run(
        [sys.executable, "-m", "huxley_realtime_sim"], env=env, capture_output=True, timeout=30, check=False
    )
    assert done.returncode == 2
    assert b"sim_voice" in done.stderr and b"Traceback" not in done.stderr
