"""The model-session wrapper (the real openai client) against the simulator.
Whole exchanges through the adapter are in test_exchanges."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from huxley_bridge import events as e
from huxley_bridge.model import OFFLINE_MESSAGE, ModelEndpoint, ModelSession, ModelUnavailable, translate
from huxley_bridge.settings import BridgeSettings
from huxley_cli.natsserver import free_port
from huxley_realtime_sim import SimServer, parse_rules
from huxley_realtime_sim.voice import ToneVoice

RULES = """
speed: 0
default: {say: "Sorry?"}
follow_up: {say: "Done."}
rules:
  - name: time
    text: ["what time"]
    marker: "1"
    transcript: "What time is it?"
    say: "One moment."
    tools: [{name: get_current_time}]
    then: "It is {output.time}."
"""

VOICE = ToneVoice()


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with SimServer(parse_rules(RULES), voice=VOICE) as server:
        yield server


def test_endpoint_from_settings() -> None:
    offline = ModelEndpoint.from_settings(BridgeSettings(_env_file=None))  # type: ignore[call-arg]
    assert offline.offline_message == OFFLINE_MESSAGE and "OPENAI_API_KEY" in OFFLINE_MESSAGE
    with pytest.raises(ModelUnavailable, match="OPENAI_API_KEY is not set"):
        ModelSession(offline)
    sim = ModelEndpoint.from_settings(BridgeSettings(_env_file=None, realtime_url="ws://127.0.0.1:1/v1"))  # type: ignore[call-arg]
    assert sim.offline_message is None and sim.api_key and sim.websocket_base_url == "ws://127.0.0.1:1/v1"
    real = ModelEndpoint.from_settings(BridgeSettings(_env_file=None, OPENAI_API_KEY="sk-x"))  # type: ignore[call-arg]
    assert (real.api_key, real.websocket_base_url, real.where) == ("sk-x", None, "OpenAI")
    assert sim.simulated and not real.simulated


def test_the_offline_url_is_used_only_without_a_key() -> None:
    url = "ws://realtime-sim:8080/v1"
    keyless = ModelEndpoint.from_settings(BridgeSettings(_env_file=None, realtime_offline_url=url))  # type: ignore[call-arg]
    assert keyless.websocket_base_url == url and keyless.simulated and keyless.offline_message is None
    keyed = ModelEndpoint.from_settings(
        BridgeSettings(_env_file=None, OPENAI_API_KEY="sk-x", realtime_offline_url=url)  # type: ignore[call-arg]
    )
    assert keyed.websocket_base_url is None and keyed.where == "OpenAI" and not keyed.simulated


async def test_connect_failure_is_model_unavailable() -> None:
    session = ModelSession(
        ModelEndpoint("gpt-realtime", "sk", f"ws://127.0.0.1:{free_port()}/v1"), connect_timeout_s=5
    )
    with pytest.raises(ModelUnavailable):
        await session.connect()
    assert not session.connected
    assert not await session.send({"type": "response.create"})


async def test_wrapper_translates_server_events(sim: SimServer) -> None:
    session = ModelSession(ModelEndpoint("gpt-realtime", "sk-test", sim.url))
    await session.connect()
    assert session.session.type == "realtime"
    tools = [
        {"type": "function", "name": "get_current_time", "description": "t", "parameters": {"type": "object"}}
    ]
    await session.send({"type": "session.update", "session": {"type": "realtime", "tools": tools}})
    await session.send(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "what time"}],
            },
        }
    )
    await session.send({"type": "response.create", "event_id": "create-1"})
    await session.send({"type": "response.create", "event_id": "create-2"})  # refused: one at a time
    seen: list[Any] = []
    async for event in session.events():
        seen.append(event)
        if isinstance(event, e.ResponseDone):
            break
    kinds = [type(x).__name__ for x in seen]
    assert {"ResponseCreated", "ModelError", "AudioDelta", "FunctionCall"} <= set(kinds)
    assert kinds[-1] == "ResponseDone"
    error = next(x for x in seen if isinstance(x, e.ModelError))
    assert (error.code, error.event_id) == ("conversation_already_has_active_response", "create-2")
    audio = b"".join(x.pcm for x in seen if isinstance(x, e.AudioDelta))
    assert audio == VOICE.render_now("One moment.")
    call = next(x for x in seen if isinstance(x, e.FunctionCall))
    assert (call.name, call.arguments) == ("get_current_time", "{}")
    done = seen[-1]
    assert done.status == "completed" and done.usage["output_token_details"]["audio_tokens"] > 0
    assert translate(object()) is None
    await session.close()
