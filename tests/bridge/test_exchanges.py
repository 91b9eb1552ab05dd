"""Whole exchanges through the real adapter: the bridge service on the real
bus with focus, storage, audio-io and a skill-host (system, audiobooks), and
the model played by the simulator through the real `openai` client. Injected
turns come from focus (`inject`), presses from the edge's subjects."""

from __future__ import annotations

import json
import wave
from pathlib import Path
from typing import Any

from nats.aio.client import Client

from huxley_runtime.rpc import request
from huxley_runtime.settings import HuxleySettings
from huxley_wire.messages import bridge as bm
from huxley_wire.messages import focus as fm
from support.waiting import until

from .stack import VOICE, Heard, Stack, stack_of, wait_tools

RULES = """
speed: 0
chunk_ms: 100
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
    tools: [{name: play_audiobook, arguments: {book_id: "Long.wav"}}]
  - name: story
    text: ["long story"]
    say: "once upon a time there was a story that went on for a long long while"
  - name: hold
    text: ["hold on"]
    say: "holding on for a while"
    hold: true
"""
STORY = "once upon a time there was a story that went on for a long long while"


def exchange(nc: Client, settings: HuxleySettings, tmp_path: Path, skills: str = "system") -> Any:
    return stack_of(nc, settings, tmp_path, rules=RULES, skills=skills)


async def inject(s: Stack, inject_id: str, prompt: str, priority: str = "normal") -> None:
    message = fm.Inject(inject_id=inject_id, prompt=prompt, priority=fm.InjectPriority(priority))
    assert (await request(s.nc, s.subjects.focus_rpc_of("bridge"), message)).status == "fired"


def said_time(s: Stack, nth: int = 0) -> str:
    """What the clock tool answered (the `then` of the time rule speaks it)."""
    outputs = [
        ev["item"]["output"]
        for ev in s.sim.received
        if ev.get("type") == "conversation.item.create" and ev["item"].get("type") == "function_call_output"
    ]
    return str(json.loads(outputs[nth])["time"])


def types(s: Stack) -> list[str]:
    return [str(ev["type"]) for ev in s.sim.received]


async def test_a_press_runs_the_tool_and_both_answers_reach_the_turns_stream(
    nc: Client, settings: HuxleySettings, tmp_path: Path
) -> None:
    async with exchange(nc, settings, tmp_path) as s:
        transcripts = await Heard.on(nc, s.subjects.bridge_event("transcript"), bm.TranscriptEvent)
        ended = await s.ask_the_time()
        assert ended.activity_id is not None
        spoken = VOICE.render_now("One moment.") + VOICE.render_now(f"It is {said_time(s)}.")
        assert bytes(s.out[ended.activity_id]) == spoken
        assert types(s)[0] == "session.update"
        offered = [ev for ev in s.sim.received if ev["type"] == "session.update"][-1]
        assert "get_current_time" in [tool["name"] for tool in offered["session"]["tools"]]
        assert "input_audio_buffer.append" in types(s)
        after_audio = types(s)[types(s).index("input_audio_buffer.commit") :]
        assert after_audio == [
            "input_audio_buffer.commit",
            "response.create",
            "conversation.item.create",
            "response.create",
        ]
        await transcripts.wait_for(lambda t: True, count=3)
        assert [(t.role, t.text) for t in transcripts.items] == [
            ("user", "What time is it?"),
            ("assistant", "One moment."),
            ("assistant", f"It is {said_time(s)}."),
        ]


def write_book(path: Path, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(24_000)
        wav.writeframes((1000).to_bytes(2, "little", signed=True) * int(24_000 * seconds))


async def test_an_injected_turn_speaks_then_focus_starts_the_book_held_for_its_barrier(
    nc: Client, settings: HuxleySettings, tmp_path: Path
) -> None:
    write_book(tmp_path / "data" / "basic" / "audiobooks" / "Long.wav", 30)
    async with exchange(nc, settings, tmp_path, skills="system,audiobooks") as s:
        await wait_tools(s, "play_audiobook")
        await inject(s, "inj-7", "play the book", "block_behind_comms")
        ended = await s.wait_turn("ended")
        assert (ended.kind, ended.inject_id) == ("injected", "inj-7") and ended.activity_id
        assert bytes(s.out[ended.activity_id]) == VOICE.render_now("Here's your book.")
        assert types(s).count("response.create") == 1  # a stream needs no follow-up

        def book_playing() -> bool:  # focus started the held stream: the book on a stream of its own
            return any(stream != ended.activity_id and pcm for stream, pcm in s.out.items())

        await until(book_playing, 15, "the book's frames")
        snap = await request(nc, s.subjects.focus_rpc_of("bridge"), fm.SnapshotRequest())
        content = [a for a in snap.channels.get("content", []) if a.holder != "bridge"]
        assert content, snap


async def test_a_drop_mid_response_ends_the_turn_and_the_next_session_answers_whole(
    nc: Client, settings: HuxleySettings, tmp_path: Path
) -> None:
    async with exchange(nc, settings, tmp_path) as s:
        await wait_tools(s, "get_current_time")
        s.sim.set_fault(drop_after_ms=300)
        await inject(s, "inj-1", "long story")
        ended = await s.wait_turn("ended")  # nothing stuck: DIALOG handed back with turn_end
        assert ended.inject_id == "inj-1" and ended.activity_id
        assert 0 < len(s.out[ended.activity_id]) < len(VOICE.render_now(STORY))
        await s.sim.wait_connections(2)  # the lifecycle reconnected

        async def connected() -> bool:
            return (await s.snapshot()).connected

        await until(connected, 10, "the bridge to reconnect")
        await inject(s, "inj-2", "what time")
        again = await s.wait_turn("ended", count=2)
        assert again.inject_id == "inj-2" and again.activity_id
        spoken = VOICE.render_now("One moment.") + VOICE.render_now(f"It is {said_time(s)}.")
        assert bytes(s.out[again.activity_id]) == spoken


async def test_malformed_arguments_from_the_model_get_an_error_output_and_the_turn_goes_on(
    nc: Client, settings: HuxleySettings, tmp_path: Path
) -> None:
    async with exchange(nc, settings, tmp_path) as s:
        await wait_tools(s, "get_current_time")
        s.sim.set_fault(malformed_arguments=True)
        await inject(s, "inj-1", "what time")
        await s.wait_turn("ended")
    output = next(ev for ev in s.sim.received if ev.get("item", {}).get("type") == "function_call_output")
    error = json.loads(output["item"]["output"])
    assert error["error"] == "invalid_arguments" and error["tool"] == "get_current_time"
    assert types(s).count("response.create") == 2  # the follow-up: the turn went on


async def test_a_press_during_a_live_response_cancels_it_then_truncates_at_what_audio_io_played(
    nc: Client, settings: HuxleySettings, tmp_path: Path
) -> None:
    async with exchange(nc, settings, tmp_path) as s:
        await wait_tools(s, "get_current_time")
        await inject(s, "inj-1", "hold on")
        speaking = await s.wait_turn("speaking")
        assert speaking.activity_id
        await until(lambda: len(s.out.get(speaking.activity_id or "", b"")) >= 960 * 5, 10, "some speech")
        await s.press("1", "p2")  # barge in: the held response is still live
        cancel = await s.sim.wait_for("response.cancel")
        truncate = await s.sim.wait_for("conversation.item.truncate")
        assert s.sim.received.index(cancel) < s.sim.received.index(truncate)
        whole_ms = len(VOICE.render_now("holding on for a while")) // 48
        assert 0 <= truncate["audio_end_ms"] <= whole_ms
        cancelled = await s.wait_turn("cancelled")
        assert cancelled.turn_id == speaking.turn_id
        ended = await s.wait_turn("ended")  # the new user turn (the cancelled one sends no turn_end)
        assert ended.kind == "user" and ended.activity_id
        spoken = VOICE.render_now("One moment.") + VOICE.render_now(f"It is {said_time(s)}.")
        assert bytes(s.out[ended.activity_id]) == spoken
    assert [ev for ev in s.sim.received if ev.get("type") == "error"] == []
