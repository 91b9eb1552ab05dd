"""The skill-host on a real nats-server, without storage or focus running:
loading, manifests, tool calls, bad input, isolation of failing skills."""

from __future__ import annotations

import asyncio
import io
import json
import os
import stat

import nats.errors
import pytest
import structlog

from huxley_cli.status import discover, render
from huxley_runtime.logging import configure_logging
from huxley_runtime.rpc import request
from huxley_runtime.storage_client import SchemaClient
from huxley_skill_host.service import SkillHostService
from huxley_wire.codec import encode
from huxley_wire.messages.bridge import SessionEvent
from huxley_wire.messages.common import Health, HealthRequest
from huxley_wire.messages.skills import AnnounceRequest
from huxley_wire.subjects import Subjects
from skills.bus import call_raw, call_tool, eventually, manifests, skill_in
from support.services import running


async def health(nc, site) -> Health:
    return await request(nc, Subjects(site).health("skill-host"), HealthRequest())


async def until_status(nc, site, skill: str, wanted: set[str], timeout: float = 20.0) -> Health:
    async with asyncio.timeout(timeout):
        while True:
            current = await health(nc, site)
            if current.detail.get("skills", {}).get(skill, {}).get("status") in wanted:
                return current
            await asyncio.sleep(0.05)


async def test_tool_round_trip_and_manifest(nc, site, host_settings):
    watch = await manifests(nc, site)
    async with running(SkillHostService, host_settings("echo")) as host:
        announced = await watch.wait_for(lambda m: (skill_in(m, "echo") or {}).get("status") == "ok")
        echo = skill_in(announced, "echo")
        assert echo is not None and announced["host"] == host.holder and announced["persona"] == "basic"
        assert "echo" in [t["name"] for t in echo["tools"]]
        assert echo["prompt_context"] == "Echo repeats what it is given."
        reply = await call_tool(nc, site, "echo", "echo", {"a": [1, 2]}, turn_id="t-1")
        assert reply == {
            "v": 1,
            "output": '{"a": [1, 2]}',
            "side_effect": None,
            "host": host.holder,
            "skill": "echo",
        }


async def test_side_effects_in_the_reply(nc, site, host_settings):
    async with running(SkillHostService, host_settings("echo")) as host:
        await until_status(nc, site, "echo", {"ok"})
        beep = await call_tool(nc, site, "echo", "beep")
        assert beep["side_effect"]["kind"] == "play_sound" and len(beep["side_effect"]["pcm_b64"]) == 1280
        assert (await call_tool(nc, site, "echo", "louder", {"level": 140}))["side_effect"] == {
            "v": 1,
            "kind": "set_volume",
            "level": 100,
        }
        assert (await call_tool(nc, site, "echo", "hush"))["side_effect"]["kind"] == "cancel_media"
        stream = (await call_tool(nc, site, "echo", "short_stream"))["side_effect"]
        assert stream["kind"] == "audio_stream" and stream["has_complete_prompt"] is True
        assert stream["content_type"] == "nonmixable" and stream["patience_ms"] == 0
        assert stream["effect_id"].startswith("e-") and len(host.held) == 1


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"{not json", "bad_json"),
        (b"[1, 2]", "bad_json"),
        (b'{"v": 2, "op": "call"}', "bad_version"),
        (b'{"v": 1, "op": "explode"}', "unknown_op"),
        (b'{"v": 1, "op": "call", "call_id": "c", "tool": "echo", "args": [1]}', "invalid"),
        (b'{"v": 1, "op": "call", "call_id": "c", "tool": "echo", "args": "x"}', "invalid"),
        (b'{"v": 1, "op": "call", "call_id": "c", "tool": "nope", "args": {}}', "unknown_tool"),
    ],
)
async def test_bad_input_gets_the_error_envelope(nc, site, host_settings, payload, code):
    async with running(SkillHostService, host_settings("echo")):
        await until_status(nc, site, "echo", {"ok"})
        reply = await call_raw(nc, site, "echo", payload)
        assert reply["error"]["code"] == code, reply
        if code == "unknown_tool":
            assert "'nope'" in reply["error"]["message"] and "echo" in reply["error"]["message"]
        assert (await call_tool(nc, site, "echo", "echo", {"still": "here"}))["output"] == '{"still": "here"}'


async def test_a_raising_tool_is_tool_failed_and_logged(nc, site, host_settings):
    async with running(SkillHostService, host_settings("echo")):
        await until_status(nc, site, "echo", {"ok"})
        with structlog.testing.capture_logs() as logs:
            reply = await call_tool(nc, site, "echo", "boom", turn_id="t-42")
        assert reply["error"] == {"code": "tool_failed", "message": "RuntimeError: the echo skill exploded"}
        failed = [e for e in logs if e["event"] == "tool_failed"]
        assert failed and failed[0]["log_level"] == "error"
        assert (await call_tool(nc, site, "echo", "echo"))["output"] == "{}"
        assert (await health(nc, site)).detail["skills"]["echo"]["tool_failures"] == 1


async def test_skill_log_lines_are_namespaced_and_carry_the_turn(nc, site, host_settings):
    stream = io.StringIO()
    configure_logging("skill-host", site, json=True, level="info", stream=stream)
    try:
        async with running(SkillHostService, host_settings("echo")):
            await until_status(nc, site, "echo", {"ok"})
            await call_tool(nc, site, "echo", "echo", turn_id="t-7f3a")
            lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    finally:
        configure_logging(
            "tests", "test", json=False, level=os.environ.get("HUXLEY_TEST_LOG_LEVEL", "warning")
        )
    called = [line for line in lines if line["event"] == "echo.called"]
    assert called and called[0]["turn"] == "t-7f3a" and called[0]["skill"] == "echo"
    assert called[0]["tool"] == "echo"
    setup = [line for line in lines if line["event"] == "echo.setup_done"]
    assert setup and "turn" not in setup[0]


async def test_a_hung_tool_times_out_and_the_host_keeps_serving(nc, site, host_settings):
    async with running(SkillHostService, host_settings("echo", tool_timeout_s=0.3)):
        await until_status(nc, site, "echo", {"ok"})
        hung = asyncio.create_task(call_tool(nc, site, "echo", "hang"))
        assert (await call_tool(nc, site, "echo", "echo", {"x": 1}))["output"] == '{"x": 1}'
        reply = await hung
        assert reply["error"]["code"] == "timeout"
        assert "'hang'" in reply["error"]["message"] and "0.3 s" in reply["error"]["message"]
        status = await health(nc, site)
        assert status.status == "degraded"
        assert status.detail["skills"]["echo"]["status"] == "degraded"
        assert status.detail["skills"]["echo"]["tool_timeouts"] == 1
        assert (await call_tool(nc, site, "echo", "echo"))["output"] == "{}"


async def test_failing_skills_are_isolated_and_shown_in_status(nc, site, host_settings):
    watch = await manifests(nc, site)
    settings = host_settings("echo,brokensetup,crashy,clash,nosuchskill")
    with structlog.testing.capture_logs() as logs:
        async with running(SkillHostService, settings):
            await until_status(nc, site, "crashy", {"degraded"})
            status = await until_status(nc, site, "brokensetup", {"failed"})
            skills = status.detail["skills"]
            assert status.status == "degraded"
            assert skills["echo"]["status"] == "ok"
            assert "setup raised RuntimeError: setup cannot find its config" in skills["brokensetup"]["error"]
            assert (
                "'listener'" in skills["crashy"]["error"] and "ConnectionError" in skills["crashy"]["error"]
            )
            assert skills["clash"]["status"] == "failed"
            clash_error = skills["clash"]["error"]
            assert (
                "'echo'" in clash_error
                and "'clash'" in clash_error
                and "'echo' is declared by both" in clash_error
            )
            assert "no skill 'nosuchskill' is installed" in skills["nosuchskill"]["error"]

            # The others keep serving; the crashy skill too (its tools still work).
            assert (await call_tool(nc, site, "echo", "echo", {"ok": True}))["output"] == '{"ok": true}'
            assert json.loads((await call_tool(nc, site, "crashy", "crashy_ping"))["output"]) == {
                "failures": 1
            }
            # A failed skill does not join its queue group (a healthy instance
            # elsewhere must get every call): nobody answers here.
            with pytest.raises(nats.errors.NoRespondersError):
                await call_raw(nc, site, "brokensetup", encode_call("never_served"), timeout=2)

            announced = await watch.wait_for(
                lambda m: (skill_in(m, "brokensetup") or {}).get("status") == "failed"
            )
            assert skill_in(announced, "brokensetup")["tools"] == []

            # `huxley status` shows it.
            table = render(await discover(nc, site))
            assert "skill-host" in table and "degraded" in table
            assert "setup cannot find its config" in table and "is declared by both" in table
    events = {e["event"] for e in logs}
    assert {"skill_refused", "skill_setup_failed", "crashy.background_task_failed_permanently"} <= events


def encode_call(tool: str) -> bytes:
    return json.dumps({"v": 1, "op": "call", "call_id": "c", "tool": tool, "args": {}}).encode()


async def test_announce_reconfigures_for_a_language_and_bye_on_stop(nc, site, host_settings):
    watch = await manifests(nc, site)
    async with running(SkillHostService, host_settings("echo")) as host:
        await until_status(nc, site, "echo", {"ok"})
        await nc.publish(
            Subjects(site).skills_announce(), encode(AnnounceRequest(reason="test", language="es"))
        )
        spanish = await watch.wait_for(lambda m: m["language"] == "es" and skill_in(m, "echo") is not None)
        assert spanish["host"] == host.holder
        assert host.slots["echo"].ctx is not None and host.slots["echo"].ctx.language == "es"
    bye = await watch.wait_for(lambda m: m["bye"] is True)
    assert bye["host"] == host.holder


async def test_secrets_are_a_private_file(nc, site, host_settings, tmp_path):
    async with running(SkillHostService, host_settings("echo")):
        await until_status(nc, site, "echo", {"ok"})
        reply = await call_tool(nc, site, "echo", "secret", {"value": "abc"})
        assert json.loads(reply["output"]) == {"keys": ["token"]}
    path = tmp_path / "data" / "basic" / "secrets" / "echo.json"
    assert json.loads(path.read_text()) == {"token": "abc"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


async def test_a_session_connect_reconfigures_the_skills(nc, site, host_settings):
    async with running(SkillHostService, host_settings("echo")) as host:
        await until_status(nc, site, "echo", {"ok"})
        skill = host.slots["echo"].skill
        await nc.publish(Subjects(site).bridge_event("session"), encode(SessionEvent(connected=False)))
        await nc.publish(Subjects(site).bridge_event("session"), encode(SessionEvent(connected=True)))
        await eventually(lambda: skill.reconfigured)
        assert skill.reconfigured == ["en"]


async def test_the_data_schema_version_is_checked_before_setup_and_recorded_after(
    nc, site, storage, host_settings
):
    schema = SchemaClient(nc, Subjects(site), "basic", "echo")
    await schema.set_version(3)  # recorded by a newer version of the skill
    with structlog.testing.capture_logs() as logs:
        async with running(SkillHostService, host_settings("echo")):
            await until_status(nc, site, "echo", {"ok"})
            await eventually_async(schema.get_version, 1)
    warned = [e for e in logs if e["event"] == "skill.schema.downgrade_detected"]
    assert warned and warned[0]["stored"] == 3 and warned[0]["current"] == 1


async def eventually_async(read, expected, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if await read() == expected:
                return
            await asyncio.sleep(0.05)
