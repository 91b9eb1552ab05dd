"""Client protocol v2 as Huxley's own clients expect it, through a real
WebSocket against audio-io on a real nats-server: the progress status lines
and the tool_call dev_event built from bridge events, `?persona=` switching,
the marketplace / install / restart answers, and bad input ignored."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import websockets
from structlog.testing import capture_logs

from audio.conftest import REPO, Bus, WebClient, client_url
from huxley_audio_io.service import AudioService
from huxley_audio_io.settings import AudioSettings
from huxley_wire.codec import encode
from huxley_wire.messages.bridge import SessionEvent, StateEvent, ToolCallEvent, TurnEvent
from support.services import running


@pytest.fixture
def two_personas(tmp_path: Path) -> Path:
    folder = tmp_path / "personas"
    folder.mkdir()
    shutil.copy(REPO / "personas" / "basic.yaml", folder / "basic.yaml")
    text = (REPO / "personas" / "basic.yaml").read_text()
    abuela = text.replace("name: basic", "name: abuela").replace("language_code: en", "language_code: es")
    abuela += '\nui_strings:\n  listening: "Escuchando..."\n'
    (folder / "abuela").mkdir()
    (folder / "abuela" / "persona.yaml").write_text(abuela)
    (folder / "broken.yaml").write_text("version: 1\nname: [not a name\n")
    return folder


@pytest.fixture
async def gateway2(audio_settings: AudioSettings, two_personas: Path) -> AsyncIterator[AudioService]:
    settings = audio_settings.model_copy(update={"personas_dir": two_personas})
    async with running(AudioService, settings) as service:
        yield service


async def test_progress_status_lines_and_tool_calls_come_from_bridge_events(gateway: AudioService, bus: Bus):
    s = bus.subjects
    async with websockets.connect(client_url(gateway)) as ws:
        client = WebClient(ws)
        await client.next("input_mode")

        async def publish(kind: str, message: object) -> None:
            await bus.nc.publish(s.bridge_event(kind), encode(message))  # type: ignore[arg-type]

        await publish("state", StateEvent(value="CONNECTING"))
        assert (await client.next("status"))["message"] == "Connecting…"
        await publish("session", SessionEvent(connected=True, model="m"))
        assert (await client.next("status"))["message"] == "Connected — hold the button to speak"
        # The reference's defaults unless the persona words them (basic words "listening").
        for phase, line in (
            ("listening", "Listening..."),  # the basic persona's own word (ui_strings.listening)
            ("committed", "Sent — waiting for response..."),
            ("speaking", "Responding..."),
        ):
            await publish("turn", TurnEvent(turn_id="t1", kind="user", phase=phase))  # type: ignore[arg-type]
            assert (await client.next("status"))["message"] == line
        # An injected turn speaks too, but nobody pressed: only "responding".
        await publish("turn", TurnEvent(turn_id="t2", kind="injected", phase="committed"))
        await publish("turn", TurnEvent(turn_id="t2", kind="injected", phase="speaking"))
        assert (await client.next("status"))["message"] == "Responding..."

        call = ToolCallEvent(
            name="set_timer", args={"seconds": 60}, output='{"ok": true}', action=None, skill="timers"
        )
        await publish("tool_call", call)
        event = await client.next("dev_event", kind="tool_call")
        payload = event["payload"]
        assert {k: payload[k] for k in ("name", "args", "output", "action")} == {
            "name": "set_timer",
            "args": {"seconds": 60},
            "output": '{"ok": true}',
            "action": None,
        }
        assert payload["has_audio_stream"] is False


async def test_persona_query_switches_to_a_known_persona_and_tells_the_bridge(
    gateway2: AudioService, bus: Bus
):
    controls = await bus.watch(bus.subjects.audio_event("control"))
    async with websockets.connect(client_url(gateway2, "?persona=abuela")) as ws:
        client = WebClient(ws)
        hello = await client.next("hello")
        assert hello["current_persona"] == "abuela"
        assert hello["available_personas"] == [
            {"name": "abuela", "display_name": "abuela", "language": "es"},
            {"name": "basic", "display_name": "basic", "language": "en"},
        ]  # the unreadable YAML is not offered
        control = await controls.next_json(lambda o: o["action"] == "set_persona")
        assert control["persona"] == "abuela" and control["client_id"]
        # The new persona's words for the progress lines.
        await bus.nc.publish(
            bus.subjects.bridge_event("turn"), encode(TurnEvent(turn_id="t", kind="user", phase="listening"))
        )
        assert (await client.next("status"))["message"] == "Escuchando..."
    assert gateway2.persona_name == "abuela"

    async with websockets.connect(client_url(gateway2, "?persona=nobody")) as ws:
        client = WebClient(ws)
        hello = await client.next("hello")
        assert hello["current_persona"] == "abuela"  # the reference client says "could not switch"
        status = await client.next("status")
        assert "'nobody' is not available" in status["message"]


async def test_marketplace_install_and_restart_are_answered(gateway: AudioService):
    async with websockets.connect(client_url(gateway)) as ws:
        client = WebClient(ws)
        await client.next("input_mode")
        await client.send({"type": "get_marketplace"})
        market = await client.next("marketplace_state")
        names = [e["name"] for e in market["skills"]]
        assert "huxley-skill-timers" in names and all(n.startswith("huxley-skill-") for n in names)
        assert market["error"] is None and market["stale"] is False
        assert all(e["installed"] is False for e in market["skills"])  # no skill host runs here

        await client.send({"type": "install_skill", "package": "huxley-skill-stocks"})
        event = await client.next("install_event")
        assert event["kind"] == "complete" and event["ok"] is False
        assert event["package"] == "huxley-skill-stocks" and event["error_code"] == "not_available"
        why = (await client.next("status"))["message"]
        assert "not available" in why and "`huxley skill add huxley-skill-stocks`" in why
        assert event["error_message"] == why

        await client.send({"type": "install_skill", "package": "x; rm -rf /"})
        await client.next("install_event")
        assert "rm -rf" not in (await client.next("status"))["message"]  # not echoed as a command

        await client.send({"type": "restart_server"})
        assert "Restart is not available" in (await client.next("status"))["message"]

        await client.send({"type": "get_skills_state"})
        state = await client.next("skills_state")
        assert state == {"type": "skills_state", "persona": "basic", "skills": []}


async def test_bad_client_messages_are_logged_and_ignored_by_the_bounded_decoder(gateway: AudioService):
    async with websockets.connect(client_url(gateway)) as ws:
        client = WebClient(ws)
        await client.next("input_mode")
        with capture_logs() as logs:
            await client.send("[" * 200 + "]" * 200)  # deeper than the wire allows
            await client.send('{"type": "list_sessions", "n": ' + "9" * 100 + "}")  # a huge integer
            await client.send({"type": "set_skill_enabled", "skill": "timers", "enabled": "yes"})
            await client.send({"type": "set_skill_secret", "skill": "x", "key": "k", "value": 5})
            await client.send({"type": "get_marketplace"})
            await client.next("marketplace_state")  # still connected, still answering
        reasons = [e["reason"] for e in logs if e["event"] == "client_message_malformed"]
        assert len(reasons) == 4
        assert "nested deeper" in reasons[0] and "digits" in reasons[1]
        assert "enabled: Input should be a valid boolean" in reasons[2]
