"""The simulator against the real `openai` client (GA Realtime protocol)."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from huxley_realtime_sim import SimServer, marker_pcm, parse_rules
from huxley_realtime_sim.voice import ToneVoice

from .conftest import TEST_RULES, TOOLS

SESSION = {
    "type": "realtime",
    "instructions": "Be brief.",
    "output_modalities": ["audio"],
    "tools": TOOLS,
    "audio": {
        "input": {
            "format": {"type": "audio/pcm", "rate": 24000},
            "transcription": {"model": "whisper-1", "language": "en"},
            "turn_detection": None,
        },
        "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy"},
    },
}


async def until(conn: Any, event_type: str, seen: list[Any] | None = None) -> Any:
    """Read events up to the first of `event_type` (collecting them in `seen`)."""
    async for event in conn:
        if seen is not None:
            seen.append(event)
        if event.type == event_type:
            return event
    raise AssertionError(f"connection ended before {event_type}")


async def open_session(conn: Any) -> None:
    created = await conn.recv()
    assert created.type == "session.created"
    await conn.session.update(session=SESSION)
    updated = await until(conn, "session.updated")
    assert updated.session.audio.input.turn_detection is None
    assert [t.name for t in updated.session.tools] == ["get_current_time", "set_timer"]
    assert updated.session.instructions == "Be brief."
    assert updated.session.audio.input.transcription.language == "en"


async def test_text_message_gets_a_spoken_reply(client: AsyncOpenAI) -> None:
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await open_session(conn)
        await conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "good day"}]}
        )
        added = await until(conn, "conversation.item.added")
        assert added.item.role == "user"
        await until(conn, "conversation.item.done")
        await conn.response.create()
        seen: list[Any] = []
        done = await until(conn, "response.done", seen)
        pcm = b"".join(base64.b64decode(e.delta) for e in seen if e.type == "response.output_audio.delta")
        assert pcm == ToneVoice().render_now("I heard you.")
        transcript = next(e for e in seen if e.type == "response.output_audio_transcript.done")
        assert transcript.transcript == "I heard you."
        deltas = "".join(e.delta for e in seen if e.type == "response.output_audio_transcript.delta")
        assert deltas == "I heard you."
        order = [e.type for e in seen if not e.type.endswith(".delta")]
        assert order == [
            "response.created",
            "response.output_item.added",
            "conversation.item.added",
            "response.content_part.added",
            "response.output_audio.done",
            "response.output_audio_transcript.done",
            "response.content_part.done",
            "response.output_item.done",
            "conversation.item.done",
            "response.done",
        ]
        assert done.response.status == "completed"
        usage = done.response.usage
        assert usage.output_token_details.audio_tokens == len(pcm) // 48 // 50
        assert (
            usage.input_tokens
            == usage.input_token_details.text_tokens + usage.input_token_details.audio_tokens
        )
        assert done.response.output[0].content[0].transcript == "I heard you."


async def test_marker_audio_tool_call_and_follow_up(client: AsyncOpenAI, sim: SimServer) -> None:
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await open_session(conn)
        audio = marker_pcm("1")
        for start in range(0, len(audio), 960):  # 20 ms frames, like the bridge
            await conn.input_audio_buffer.append(audio=base64.b64encode(audio[start : start + 960]).decode())
        await conn.input_audio_buffer.commit()
        committed = await until(conn, "input_audio_buffer.committed")
        heard = await until(conn, "conversation.item.input_audio_transcription.completed")
        assert heard.item_id == committed.item_id and heard.transcript == "What time is it?"
        await conn.response.create()
        seen: list[Any] = []
        done = await until(conn, "response.done", seen)
        call = next(e for e in seen if e.type == "response.function_call_arguments.done")
        assert (call.name, json.loads(call.arguments)) == ("get_current_time", {})
        assert [item.type for item in done.response.output] == ["message", "function_call"]
        await conn.conversation.item.create(
            item={"type": "function_call_output", "call_id": call.call_id, "output": '{"time": "10:42 AM"}'}
        )
        await conn.response.create()
        seen = []
        await until(conn, "response.done", seen)
        spoken = next(e for e in seen if e.type == "response.output_audio_transcript.done")
        assert spoken.transcript == "It is 10:42 AM."
    assert [plan.rule for plan in sim.responses] == ["time", "time"]


async def test_two_tool_calls_arrive_in_order_then_follow_up(client: AsyncOpenAI) -> None:
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await open_session(conn)
        await conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "two tools"}]}
        )
        await conn.response.create()
        seen: list[Any] = []
        await until(conn, "response.done", seen)
        calls = [e for e in seen if e.type == "response.function_call_arguments.done"]
        assert [c.name for c in calls] == ["get_current_time", "set_timer"]
        assert json.loads(calls[1].arguments) == {"seconds": 5, "message": "tea"}
        for c in calls:
            await conn.conversation.item.create(
                item={"type": "function_call_output", "call_id": c.call_id, "output": "ok"}
            )
        await conn.response.create()
        seen = []
        await until(conn, "response.done", seen)
        assert (
            next(e for e in seen if e.type == "response.output_audio_transcript.done").transcript == "Done."
        )


async def test_cancel_and_truncate(client: AsyncOpenAI) -> None:
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await open_session(conn)
        await conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hold on"}]}
        )
        await conn.response.create()
        first_audio = await until(conn, "response.output_audio.done")
        await conn.response.create()  # one response at a time
        busy = await until(conn, "error")
        assert busy.error.code == "conversation_already_has_active_response"
        await conn.response.cancel()
        seen: list[Any] = []
        done = await until(conn, "response.done", seen)
        assert done.response.status == "cancelled"
        assert done.response.status_details.reason == "client_cancelled"
        item_id = first_audio.item_id
        await conn.conversation.item.truncate(item_id=item_id, content_index=0, audio_end_ms=100)
        truncated = await until(conn, "conversation.item.truncated")
        assert (truncated.item_id, truncated.audio_end_ms) == (item_id, 100)
        await conn.conversation.item.truncate(item_id=item_id, content_index=0, audio_end_ms=60_000)
        too_long = await until(conn, "error")
        assert too_long.error.code == "invalid_value" and "longer than the audio" in too_long.error.message
        await conn.response.cancel()
        nothing = await until(conn, "error")
        assert nothing.error.code == "response_cancel_not_active"


async def test_cancel_mid_audio_stops_the_deltas(client: AsyncOpenAI) -> None:
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await open_session(conn)
        await conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "tell me a long story"}],
            }
        )
        await conn.response.create()
        await until(conn, "response.output_audio.delta")  # paced in real time: more would follow
        await conn.response.cancel()
        seen: list[Any] = []
        done = await until(conn, "response.done", seen)
        assert done.response.status == "cancelled"
        said = next(e for e in seen if e.type == "response.output_audio_transcript.done").transcript
        full = "once upon a time there was a very long story that went on and on and on"
        assert full.startswith(said) and said != full
        assert done.response.output[0].status == "incomplete"


async def test_bad_input_gets_error_events_and_the_socket_stays(client: AsyncOpenAI) -> None:
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await open_session(conn)
        await conn.send({"type": "no.such.event", "event_id": "evt_1"})  # type: ignore[arg-type]
        unknown = await until(conn, "error")
        assert (unknown.error.code, unknown.error.param, unknown.error.event_id) == (
            "invalid_value",
            "type",
            "evt_1",
        )
        await conn.send_raw("{this is not json")
        malformed = await until(conn, "error")
        assert malformed.error.code == "invalid_json"
        await conn.send_raw('["a list"]')
        assert (await until(conn, "error")).error.code == "invalid_event"
        await conn.session.update(session={"instructions": "no type"})  # type: ignore[typeddict-item]
        no_type = await until(conn, "error")
        assert no_type.error.param == "session.type"
        await conn.input_audio_buffer.append(audio="***not base64***")
        assert (await until(conn, "error")).error.param == "audio"
        await conn.input_audio_buffer.append(audio=base64.b64encode(bytes(960)).decode())
        await conn.input_audio_buffer.commit()
        short = await until(conn, "error")
        assert short.error.code == "input_audio_buffer_commit_empty"
        await conn.input_audio_buffer.clear()
        await until(conn, "input_audio_buffer.cleared")
        await conn.conversation.item.create(
            item={"type": "function_call_output", "call_id": "call_nope", "output": "x"}
        )
        assert (await until(conn, "error")).error.param == "item.call_id"
        await conn.conversation.item.truncate(item_id="item_nope", content_index=0, audio_end_ms=0)
        assert (await until(conn, "error")).error.code == "item_not_found"
        # Still serving.
        await conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
        )
        await conn.response.create()
        assert (await until(conn, "response.done")).response.status == "completed"


async def test_dropped_connection_mid_response(client: AsyncOpenAI, sim: SimServer) -> None:
    sim.set_fault(drop_after_ms=200)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await open_session(conn)
        await conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "good day"}]}
        )
        await conn.response.create()
        deltas = 0
        with pytest.raises(ConnectionClosed):
            async for event in conn:
                assert event.type != "response.done"
                deltas += event.type == "response.output_audio.delta"
        assert deltas == 2  # 200 ms in 100 ms chunks, then the socket died


async def test_drop_all_and_reconnect(client: AsyncOpenAI, sim: SimServer) -> None:
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await open_session(conn)
        assert sim.drop_all() == 1
        with pytest.raises(ConnectionClosed):
            await until(conn, "never")
    async with client.realtime.connect(model="gpt-realtime") as again:
        await open_session(again)
    assert sim.connects == 2


async def test_malformed_arguments_and_unknown_tool_faults(client: AsyncOpenAI, sim: SimServer) -> None:
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await open_session(conn)
        sim.set_fault(malformed_arguments=True)
        await conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "what time"}]}
        )
        await conn.response.create()
        call = await until(conn, "response.function_call_arguments.done")
        with pytest.raises(json.JSONDecodeError):
            json.loads(call.arguments)
        await until(conn, "response.done")
        await conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "rogue"}]}
        )
        await conn.response.create()
        rogue = await until(conn, "response.function_call_arguments.done")
        assert rogue.name == "no_such_tool"


async def test_client_events_are_recorded_for_tests(client: AsyncOpenAI, sim: SimServer) -> None:
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await open_session(conn)
        await conn.input_audio_buffer.append(audio=base64.b64encode(bytes(960)).decode())
        appended = await sim.wait_for("input_audio_buffer.append")
        assert appended["audio"] == "<960 bytes>"
        update = await sim.wait_for(lambda e: e.get("type") == "session.update")
        assert update["session"]["instructions"] == "Be brief."


async def test_http_controls_and_auth(sim: SimServer) -> None:
    base = f"http://127.0.0.1:{sim.port}"
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{base}/health")).text == "ok\n"
        fault = await http.get(f"{base}/control/fault", params={"delay_ms": "5", "hold": "1"})
        assert fault.json() == {"fault": {"delay_ms": "5", "hold": True}}
        bad = await http.get(f"{base}/control/fault", params={"explode": "1"})
        assert bad.status_code == 400
        assert (await http.get(f"{base}/control/drop")).json() == {"dropped": 0}
        assert (await http.get(f"{base}/elsewhere")).status_code == 404
    with pytest.raises(InvalidStatus) as refused:
        async with ws_connect(f"ws://127.0.0.1:{sim.port}/v1/realtime?model=x"):
            pass
    assert refused.value.response.status_code == 401


async def say(conn: Any, text: str) -> None:
    await conn.conversation.item.create(
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    )
    await conn.response.create()


async def test_hold_after_ms_stops_the_audio_until_the_response_is_cancelled(
    client: AsyncOpenAI, sim: SimServer
) -> None:
    sim.set_fault(hold_after_ms=200)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await open_session(conn)
        await say(conn, "good day")
        deltas = 0
        async for event in conn:
            deltas += event.type == "response.output_audio.delta"
            if deltas == 2:
                break
        await conn.response.cancel()
        seen: list[Any] = []
        done = await until(conn, "response.done", seen)
        assert done.response.status == "cancelled"
        assert not any(e.type == "response.output_audio.delta" for e in seen)  # nothing past the hold


async def test_error_after_ms_sends_a_server_error_and_no_response_done(
    client: AsyncOpenAI, sim: SimServer
) -> None:
    sim.set_fault(error_after_ms=100)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await open_session(conn)
        await say(conn, "good day")
        seen: list[Any] = []
        error = await until(conn, "error", seen)
        assert error.error.type == "server_error" and error.error.event_id is None
        assert sum(e.type == "response.output_audio.delta" for e in seen) == 1
        # the response is over: a new one may start, and it finishes
        await say(conn, "good day")
        seen = []
        await until(conn, "response.done", seen)
        assert [e.type for e in seen].count("response.created") == 1


async def test_the_next_session_update_can_be_rejected_naming_it(client: AsyncOpenAI, sim: SimServer) -> None:
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.recv()
        sim.reject_next_update("invalid_value", "Invalid voice.")
        await conn.session.update(session=SESSION, event_id="su-1")
        error = await until(conn, "error")
        assert (error.error.code, error.error.event_id, error.error.message) == (
            "invalid_value",
            "su-1",
            "Invalid voice.",
        )
        await conn.session.update(session=SESSION)  # only the next one
        assert (await until(conn, "session.updated")).session.instructions == "Be brief."


async def test_http_controls_reject_the_next_update_and_set_typed_faults(sim: SimServer) -> None:
    base = f"http://{sim.host}:{sim.port}"
    async with httpx.AsyncClient() as http:
        reply = await http.get(f"{base}/control/reject_update", params={"code": "bad", "message": "no"})
        assert reply.status_code == 200
        assert sim._take_rejection() == ("bad", "no")
        await http.get(f"{base}/control/fault", params={"hold_after_ms": "300"})
        assert sim._take_fault() == {"hold_after_ms": 300}


async def test_http_controls_are_off_unless_enabled() -> None:
    """A deployment's simulator (HUXLEY_SIM_CONTROLS unset) refuses every
    control: no one on the network can drop the model or plant a fault."""
    async with SimServer(parse_rules(TEST_RULES), voice=ToneVoice()) as sim:
        base = f"http://127.0.0.1:{sim.port}"
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{base}/health")).status_code == 200
            for path in ("/control/drop", "/control/fault?hold=1", "/control/reject_update", "/control/log"):
                assert (await http.get(f"{base}{path}")).status_code == 403, path
        assert sim._take_fault() == {} and sim._take_rejection() is None


def test_sim_controls_setting_defaults_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from huxley_realtime_sim.settings import SimSettings

    monkeypatch.delenv("HUXLEY_SIM_CONTROLS", raising=False)
    assert SimSettings().sim_controls is False
    monkeypatch.setenv("HUXLEY_SIM_CONTROLS", "1")
    assert SimSettings().sim_controls is True
