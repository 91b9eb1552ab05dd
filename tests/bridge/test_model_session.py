"""The model-session wrapper (the real openai client) against the simulator,
and full scripted exchanges: coordinator + lifecycle + wrapper + simulator."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from huxley_bridge import commands as c
from huxley_bridge import events as e
from huxley_bridge.model import OFFLINE_MESSAGE, ModelEndpoint, ModelSession, ModelUnavailable, translate
from huxley_bridge.settings import BridgeSettings
from huxley_cli.natsserver import free_port
from huxley_realtime_sim import SimServer, marker_pcm, parse_rules
from huxley_realtime_sim.voice import ToneVoice
from huxley_wire.messages.focus import InjectPriority
from huxley_wire.messages.skills import AudioStreamEffect, ToolReply

from .driver import LocalLoop

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
  - name: book
    text: ["play the book"]
    say: "Here's your book."
    tools: [{name: play_audiobook, arguments: {book_id: moby}}]
  - name: story
    text: ["long story"]
    say: "once upon a time there was a story that went on for a long long while"
  - name: hold
    text: ["hold on"]
    say: "holding on for a while"
    hold: true
"""

VOICE = ToneVoice()


def clock(args: dict[str, Any]) -> ToolReply:
    return ToolReply(output=json.dumps({"time": "10:42 AM"}), host="host-1", skill="system")


def book(args: dict[str, Any]) -> ToolReply:
    effect = AudioStreamEffect(effect_id="e-moby", label="Moby Dick", patience_ms=1_800_000)
    return ToolReply(
        output=json.dumps({"playing": args.get("book_id")}),
        side_effect=effect,
        host="host-1",
        skill="audiobooks",
    )


TOOLS = {"get_current_time": ("system", clock), "play_audiobook": ("audiobooks", book)}


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


async def test_full_exchange_with_marker_audio_and_a_tool_call(sim: SimServer) -> None:
    async with LocalLoop(sim.url, TOOLS) as loop:
        await loop.press(marker_pcm("1") + bytes(960 * 10))
        end = await loop.wait_turn_end()
    assert end.pending is None
    heard = loop.speaker.audio(end.activity_id)
    assert heard == VOICE.render_now("One moment.") + VOICE.render_now("It is 10:42 AM.")
    types = [x["type"] for x in sim.received]
    assert types[0] == "session.update"
    assert sim.received[0]["session"]["tools"][0]["name"] == "get_current_time"
    assert "input_audio_buffer.append" in types
    after_audio = types[types.index("input_audio_buffer.commit") :]
    assert after_audio == [
        "input_audio_buffer.commit",
        "response.create",
        "conversation.item.create",
        "response.create",
    ]
    output = next(x for x in sim.received if x.get("item", {}).get("type") == "function_call_output")
    assert json.loads(output["item"]["output"]) == {"time": "10:42 AM"}
    transcripts = [x.message for x in loop.log if isinstance(x, c.Publish) and x.kind == "transcript"]
    assert [(t.role, t.text) for t in transcripts] == [  # type: ignore[attr-defined]
        ("user", "What time is it?"),
        ("assistant", "One moment."),
        ("assistant", "It is 10:42 AM."),
    ]


async def test_injected_turn_speech_then_the_book_at_the_barrier(sim: SimServer) -> None:
    async with LocalLoop(sim.url, TOOLS) as loop:
        loop.put(e.RunInjectRequested("inj-7", "play the book", "a-inj", InjectPriority.BLOCK_BEHIND_COMMS))
        end = await loop.wait_turn_end()
    assert (end.activity_id, end.inject_id) == ("a-inj", "inj-7")
    assert end.pending is not None and (end.pending.kind, end.pending.effect_id) == ("stream", "e-moby")
    assert loop.speaker.audio("a-inj") == VOICE.render_now("Here's your book.")
    assert [x["type"] for x in sim.received].count("response.create") == 1  # a stream needs no follow-up


async def test_dropped_connection_mid_response_recovers(sim: SimServer) -> None:
    sim.set_fault(drop_after_ms=300)
    async with LocalLoop(sim.url, TOOLS) as loop:
        loop.put(e.RunInjectRequested("inj-1", "long story", "a-inj", InjectPriority.NORMAL))
        end = await loop.wait_turn_end()  # the turn ends: nothing stuck, DIALOG handed back
        assert end.activity_id == "a-inj" and end.pending is None
        story = VOICE.render_now("once upon a time there was a story that went on for a long long while")
        assert 0 < len(loop.speaker.audio("a-inj")) < len(story)
        await sim.wait_connections(2, timeout=10)  # the lifecycle reconnected after 1 s
        await loop.connected.wait()
        loop.put(e.RunInjectRequested("inj-2", "what time", "a-inj2", InjectPriority.NORMAL))
        end = await loop.wait_turn_end(2)
        assert loop.speaker.audio("a-inj2") == VOICE.render_now("One moment.") + VOICE.render_now(
            "It is 10:42 AM."
        )


async def test_malformed_arguments_from_the_model_get_an_error_output(sim: SimServer) -> None:
    sim.set_fault(malformed_arguments=True)
    async with LocalLoop(sim.url, TOOLS) as loop:
        loop.put(e.RunInjectRequested("inj-1", "what time", "a-inj", InjectPriority.NORMAL))
        await loop.wait_turn_end()
    output = next(x for x in sim.received if x.get("item", {}).get("type") == "function_call_output")
    error = json.loads(output["item"]["output"])
    assert error["error"] == "invalid_arguments" and error["tool"] == "get_current_time"
    assert [x["type"] for x in sim.received].count("response.create") == 2  # the turn went on


async def test_barge_in_truncates_at_what_was_played(sim: SimServer) -> None:
    async with LocalLoop(sim.url, TOOLS) as loop:
        loop.put(e.RunInjectRequested("inj-1", "hold on", "a-inj", InjectPriority.NORMAL))
        reply = VOICE.render_now("holding on for a while")
        whole_frames = len(reply) - len(reply) % 960  # the last partial frame waits for the end
        await loop.wait_heard("a-inj", whole_frames)  # the loop "plays" each frame at once
        await loop.press(marker_pcm("1"), press_id="p2")  # barge in: the response is still live
        truncate = await sim.wait_for("conversation.item.truncate")
        cancel = await sim.wait_for("response.cancel")
        assert sim.received.index(cancel) < sim.received.index(truncate)
        assert truncate["audio_end_ms"] == whole_frames // 48
        end = await loop.wait_turn_end(1)  # the new user turn (the cancelled one sends no turn_end)
        assert loop.speaker.audio(end.activity_id) == VOICE.render_now("One moment.") + VOICE.render_now(
            "It is 10:42 AM."
        )
    assert [x for x in sim.received if x.get("type") == "error"] == []
