"""The model-session wrapper (the real openai client) against the simulator.
Whole exchanges through the adapter are in test_exchanges."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Union

import pytest
from openai._utils import async_maybe_transform
from openai.resources.realtime.realtime import AsyncRealtimeConnection
from openai.types.realtime.realtime_client_event_param import RealtimeClientEventParam
from openai.types.realtime.response_create_event_with_references_param import (
    ResponseCreateEventWithReferencesParam,
)

from huxley_bridge import commands as c
from huxley_bridge import events as e
from huxley_bridge.instructions import Voice, session_update
from huxley_bridge.model import (
    OFFLINE_MESSAGE,
    AudioDeltaEvent,
    ModelEndpoint,
    ModelSession,
    ModelUnavailable,
    fast_parser,
    translate,
)
from huxley_bridge.settings import BridgeSettings
from huxley_cli.natsserver import free_port
from huxley_realtime_sim import SimServer, parse_rules
from huxley_realtime_sim.voice import ToneVoice
from huxley_runtime.bench_stamps import StampFile
from huxley_wire.audio import FRAME_BYTES
from huxley_wire.messages.focus import InjectPriority

from .rig import Rig, b64, tone

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


def every_kind_the_bridge_sends() -> list[dict[str, Any]]:
    """Client events as the coordinator and the lifecycle build them: a user
    turn with a tool call, a barge-in, an injected turn, a session.update."""
    rig = Rig().connect({"get_current_time": "system"})
    out: list[c.Command] = []
    _, activity = rig.press("p1", 0)
    rig.talk()
    out += rig.release("p1", 500_000)
    out += rig.respond([("item-a", tone(200))], calls=[("c1", "get_current_time", {})])[1]
    out += rig.tool_ok("c1", {"time": "10:42"})
    out += rig.respond([("item-b", tone(600))], done=False)[1]
    out += rig.feed(e.Played(activity, 300.0))
    barge = rig.feed(e.PttStart("p2", 2_000_000))
    done = rig.feed(e.InterruptDone(rig.one(barge, c.Interrupt).token))
    out += done + rig.feed(e.AudioCleared(rig.one(done, c.ClearAudio).token))
    out += (
        Rig()
        .connect()
        .feed(e.RunInjectRequested("inj-1", "Tell the user: tea", "a-i", InjectPriority.NORMAL))
    )
    tools = [{"type": "function", "name": "t", "description": "d", "parameters": {"type": "object"}}]
    voice = Voice("You are Huxley.", "alloy", "en")
    updates = [
        session_update(
            voice, model="m", transcription_model="w", prompt_contexts=["p"], tools=tools, summary="s"
        ),
        session_update(
            voice, model="m", transcription_model="w", prompt_contexts=[], tools=[], summary=None, full=False
        ),
    ]
    append = {"type": "input_audio_buffer.append", "audio": b64(tone(20))}  # ModelSession.append_audio
    return [*rig.sent(out), append, *updates]


async def test_events_go_out_as_the_client_itself_would_write_them() -> None:
    """ModelSession.send skips the client's TypedDict transform (its cost); for
    every kind of event the bridge sends, that transform changes nothing."""
    events = every_kind_the_bridge_sends()
    kinds = {event["type"] for event in events}
    assert kinds == {
        "input_audio_buffer.append",
        "input_audio_buffer.clear",
        "input_audio_buffer.commit",
        "response.create",
        "response.cancel",
        "conversation.item.create",
        "conversation.item.truncate",
        "session.update",
    }
    client_events = Union[RealtimeClientEventParam, ResponseCreateEventWithReferencesParam]  # noqa: UP007
    for event in events:
        assert json.dumps(await async_maybe_transform(event, client_events)) == json.dumps(event)


def test_audio_deltas_parse_past_the_clients_models_to_the_same_event() -> None:
    # What the openai client itself makes of each event, against the bridge's parser.
    reference = AsyncRealtimeConnection.parse_event
    parse = fast_parser(lambda data: reference(None, data))  # type: ignore[arg-type]
    pcm = tone(100)
    delta = {
        "type": "response.output_audio.delta",
        "event_id": "ev-1",
        "response_id": "resp-1",
        "item_id": "item-1",
        "output_index": 0,
        "content_index": 0,
        "delta": b64(pcm),
    }
    fast = parse(json.dumps(delta))
    assert isinstance(fast, AudioDeltaEvent)
    openai_event = reference(None, json.dumps(delta))  # type: ignore[arg-type]
    assert translate(fast) == translate(openai_event) == e.AudioDelta("resp-1", "item-1", pcm)
    created = {"type": "response.created", "event_id": "ev-2", "response": {"id": "resp-2"}}
    assert translate(parse(json.dumps(created))) == e.ResponseCreated("resp-2")
    # A delta missing a field is the client's to make something of, as before.
    broken = json.dumps({k: v for k, v in delta.items() if k != "item_id"})
    assert not isinstance(parse(broken), AudioDeltaEvent)
    assert translate(parse(broken)) == translate(reference(None, broken))  # type: ignore[arg-type]


def test_the_bench_tap_stamps_each_frame_of_a_delta_as_the_bridge_takes_it(tmp_path: Path) -> None:
    """bench/bench_paths.py reads where our model path starts from these lines."""
    stamps = StampFile(str(tmp_path / "stamps.txt"))
    reference = AsyncRealtimeConnection.parse_event
    parse = fast_parser(lambda data: reference(None, data), stamps)  # type: ignore[arg-type]
    frames = [bytes([n]) * 13 + bytes(FRAME_BYTES - 13) for n in (1, 2, 3)]
    delta = {"type": "response.output_audio.delta", "response_id": "r", "item_id": "i"}
    before = time.monotonic_ns()
    assert isinstance(parse(json.dumps({**delta, "delta": b64(b"".join(frames))})), AudioDeltaEvent)
    parse(json.dumps({"type": "response.created", "event_id": "e", "response": {"id": "r"}}))
    stamps.frames("append", time.monotonic_ns(), frames[0] + frames[1])  # a joined append: a line per frame
    lines = [line.split(" ") for line in (tmp_path / "stamps.txt").read_text().splitlines()]
    assert [(kind, head) for kind, _at, head in lines] == [
        ("delta", frames[0][:13].hex()),
        ("delta", frames[1][:13].hex()),
        ("delta", frames[2][:13].hex()),
        ("append", frames[0][:13].hex()),
        ("append", frames[1][:13].hex()),
    ]
    assert all(before <= int(at) <= time.monotonic_ns() for _kind, at, _head in lines)
