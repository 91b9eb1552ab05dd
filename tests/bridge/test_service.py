"""The bridge service over the real bus (see `stack`): tools, storage,
barge-in, malformed input, completions, offline mode, drops, the reconnect
cue, reset, focus going away, the summary and the kill switch."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client

from huxley_bridge import events as e
from huxley_bridge.cue import reconnect_cue
from huxley_bridge.instructions import SUMMARY_HEADING
from huxley_bridge.service import BridgeService
from huxley_bridge.settings import BridgeSettings
from huxley_focus.service import FocusService
from huxley_focus.settings import FocusSettings
from huxley_realtime_sim import marker_pcm
from huxley_runtime.rpc import request
from huxley_runtime.settings import HuxleySettings
from huxley_runtime.storage_client import SessionsClient
from huxley_storage.service import StorageService
from huxley_storage.settings import StorageSettings
from huxley_wire.audio import FRAME_BYTES, MAX_FRAME_PCM, decode_frame, now_us
from huxley_wire.codec import Ok, encode_obj
from huxley_wire.messages import audio as am
from huxley_wire.messages import bridge as bm
from huxley_wire.messages import focus as fm
from huxley_wire.subjects import Subjects
from support.auth import with_identity
from support.services import running
from support.waiting import until

from .stack import Heard, Stack, settings_of, stack_of, stack_without_focus, wait_tools


@pytest.fixture
async def stack(nc: Client, settings: HuxleySettings, tmp_path: Path) -> AsyncIterator[Stack]:
    async with stack_of(nc, settings, tmp_path) as s:
        yield s


async def test_a_press_runs_a_tool_and_the_answer_reaches_the_speaker_stream(stack: Stack) -> None:
    ended = await stack.ask_the_time()
    assert ended.kind == "user" and ended.activity_id
    # The sim said "One moment.", ran the tool, then "It is <time>." — two responses of audio.
    assert len(stack.out[ended.activity_id]) > 0
    # Frames released together travel joined; each message's seq is its first frame's place.
    messages = stack.messages[ended.activity_id]
    assert max(size for _, size in messages) > FRAME_BYTES
    assert all(size <= MAX_FRAME_PCM for _, size in messages)
    places = [seq for seq, _ in messages]
    assert places == [sum(-(-size // FRAME_BYTES) for _, size in messages[:i]) for i in range(len(messages))]
    outputs = [
        ev
        for ev in stack.sim.received
        if ev.get("type") == "conversation.item.create" and ev["item"].get("type") == "function_call_output"
    ]
    assert outputs and "time" in json.loads(outputs[0]["item"]["output"])
    # DIALOG is given back: focus holds nothing for the bridge.
    snap = await request(stack.nc, stack.subjects.focus_rpc_of("bridge"), fm.SnapshotRequest())
    assert not [a for views in snap.channels.values() for a in views if a.holder == "bridge"]

    async def turn_closed() -> bool:  # turn_end's reply closes the turn in the bridge too
        return (await stack.snapshot()).turn_id is None

    await until(turn_closed, 5, "the bridge to close the turn")


async def test_the_transcript_and_summary_are_stored(
    nc: Client, settings: HuxleySettings, tmp_path: Path
) -> None:
    async with stack_of(nc, settings, tmp_path) as stack:
        await stack.ask_the_time()
    # The bridge stopped: the session was ended with a summary of what was said.
    sessions = SessionsClient(nc, Subjects(settings.site), "basic")
    async with running(StorageService, settings_of(StorageSettings, settings)):
        listed = await sessions.list()
        assert listed and listed[0].summary and "What time is it?" in listed[0].summary
        detail = await sessions.get(listed[0].session_id)
        assert [t.role for t in detail.turns][:1] == ["user"]


async def test_a_press_during_speech_cancels_the_response_and_truncates_at_what_was_played(
    stack: Stack,
) -> None:
    await stack.press("2", "p1")
    speaking = await stack.wait_turn("speaking")
    await stack.press("3", "p2")
    cancelled = await stack.wait_turn("cancelled")
    assert cancelled.turn_id == speaking.turn_id
    truncate = await stack.sim.wait_for(lambda ev: ev.get("type") == "conversation.item.truncate")
    assert truncate["audio_end_ms"] >= 0
    await stack.wait_turn("ended")  # the second press got its answer


async def test_a_press_published_in_one_write_reaches_the_model_whole(stack: Stack) -> None:
    """PTT start, every mic frame and PTT stop back to back (one write, as audio-io's
    outbox may send them): the bridge takes them in that order, so no frame comes
    before its press and is dropped."""
    await wait_tools(stack, "get_current_time")
    mark = len(stack.sim.received)
    await stack.press("1", "p-whole")
    await stack.wait_turn("ended")
    appends = [ev for ev in stack.sim.received[mark:] if ev.get("type") == "input_audio_buffer.append"]
    heard = sum(int(ev["audio"].removeprefix("<").removesuffix(" bytes>")) for ev in appends)
    assert heard == len(marker_pcm("1"))


async def test_mic_frames_that_wait_together_go_to_the_model_as_one_append(stack: Stack) -> None:
    """Ten frames queued back to back (a burst from the edge, a loaded loop): the
    model gets their bytes in order in one append, not ten (mic_run)."""
    await wait_tools(stack, "get_current_time")
    adapter = stack.bridge.adapter
    assert adapter is not None
    start = now_us()
    press = am.PttEvent(action="start", press_id="p-run", ts_us=start)
    await stack.publish(stack.subjects.audio_ptt(), press)
    await stack.wait_turn("listening")
    mark = len(stack.sim.received)
    pcm = marker_pcm("1")
    for i in range(0, len(pcm), FRAME_BYTES):  # no await between: they wait in the queue together
        adapter.put(e.MicAudio(pcm[i : i + FRAME_BYTES], "p-run"))
    frames = len(pcm) // FRAME_BYTES
    stop = am.PttEvent(action="stop", press_id="p-run", ts_us=start + 300_000, frames=frames)
    await stack.publish(stack.subjects.audio_ptt(), stop)
    await stack.wait_turn("ended")
    appends = [ev for ev in stack.sim.received[mark:] if ev.get("type") == "input_audio_buffer.append"]
    assert [ev["audio"] for ev in appends] == [f"<{len(pcm)} bytes>"]


async def test_malformed_bus_input_is_refused_and_the_bridge_goes_on(stack: Stack) -> None:
    s = stack
    await s.nc.publish(s.subjects.audio_ptt(), b"{not json")
    await s.nc.publish(s.subjects.audio_mic_assistant(), b"\x00\x01garbage")
    await s.nc.publish(s.subjects.skills_manifest(), encode_obj({"v": 1, "host": 3}))
    incomplete = encode_obj({"v": 1, "op": "run_inject"})
    reply = await s.nc.request(s.subjects.bridge_inject(), incomplete, timeout=2)
    assert json.loads(reply.data)["error"]["code"] == "invalid"
    reply = await s.nc.request(s.subjects.bridge_rpc(), incomplete, timeout=2)
    assert json.loads(reply.data)["error"]["code"] == "unknown_op"  # focus's, on bridge.inject only
    reply = await s.nc.request(s.subjects.bridge_rpc(), encode_obj({"v": 1, "op": "nope"}), timeout=2)
    assert "error" in json.loads(reply.data)
    assert (await s.ask_the_time()).kind == "user"


async def test_a_completion_runs_a_turn_of_its_own(stack: Stack) -> None:
    reply = await request(stack.nc, stack.subjects.bridge_rpc(), bm.Completion(prompt="The book ended."))
    assert isinstance(reply, Ok)
    ended = await stack.wait_turn("ended")
    assert ended.kind == "completion"
    item = await stack.sim.wait_for(
        lambda ev: (
            ev.get("type") == "conversation.item.create"
            and ev["item"].get("role") == "user"
            and ev["item"]["content"][0].get("text") == "The book ended."
        )
    )
    assert item


async def test_offline_without_key_or_url_still_serves(nc: Client, settings: HuxleySettings) -> None:
    bridge_settings = settings_of(BridgeSettings, settings, openai_api_key=None, realtime_url=None)
    async with (
        running(FocusService, settings_of(FocusSettings, settings)),
        running(BridgeService, bridge_settings) as service,
    ):
        status, detail = service.health()
        assert status == "ok" and detail["offline"] and "OPENAI_API_KEY" in detail["message"]
        snap = await request(nc, Subjects(settings.site).bridge_rpc(), bm.BridgeSnapshotRequest())
        assert snap.offline and not snap.connected


async def test_the_model_dropping_mid_response_leaves_no_turn_stuck_and_no_dialog_held(stack: Stack) -> None:
    await stack.press("2", "p1")
    await stack.wait_turn("speaking")
    assert stack.sim.drop_all() == 1
    ended = await stack.wait_turn("ended")  # what was published plays out, then the barrier
    await stack.sim.wait_connections(2)  # the bridge came back on its own

    async def settled() -> bool:
        snap = await request(stack.nc, stack.subjects.focus_rpc_of("bridge"), fm.SnapshotRequest())
        held = [a for views in snap.channels.values() for a in views if a.holder == "bridge"]
        bridge = await stack.snapshot()
        return not held and bridge.turn_id is None and bridge.connected

    await until(settled, 10, "no DIALOG held, no turn, the bridge connected")
    await stack.press("3", "p2")  # and the next press is a normal turn
    again = await stack.wait_turn("ended", count=2)
    assert again.turn_id != ended.turn_id and again.kind == "user"


async def test_from_the_fourth_failed_attempt_the_reconnect_cue_plays(
    nc: Client, settings: HuxleySettings, tmp_path: Path
) -> None:
    subjects = Subjects(settings.site)
    heard: dict[str, bytearray] = {}
    finished = asyncio.Event()

    async def on_out(msg: Any) -> None:
        frame = decode_frame(msg.data)
        heard.setdefault(frame.stream, bytearray()).extend(frame.pcm)
        if frame.eos:
            finished.set()

    await nc.subscribe(subjects.audio_out_owned_all(), cb=on_out)
    await nc.flush()
    nowhere = "ws://127.0.0.1:9/v1"  # the discard port: nothing listens
    bridge = settings_of(BridgeSettings, settings, realtime_url=nowhere, reconnect_delays_s=(0.05,))
    async with (
        running(FocusService, settings_of(FocusSettings, settings)),
        running(BridgeService, bridge) as service,
    ):
        await asyncio.wait_for(finished.wait(), 15)
        assert service.adapter is not None and service.adapter.lifecycle.schedule.attempt >= 4
        first = next(iter(heard))  # later attempts play it again; the first is complete
        assert bytes(heard[first]) == reconnect_cue()
        status, detail = service.health()
        assert status == "degraded" and not detail["connected"]


async def test_reset_opens_a_new_model_session_and_a_new_stored_conversation(
    stack: Stack, settings: HuxleySettings
) -> None:
    await stack.ask_the_time()
    await stack.publish(stack.subjects.audio_event("control"), am.ClientControl(action="reset"))
    await stack.sim.wait_connections(2)
    sessions = SessionsClient(stack.nc, stack.subjects, "basic")

    async def two_sessions() -> list[Any] | None:
        listed = await sessions.list()
        return listed if len(listed) >= 2 else None

    listed = await until(two_sessions, 10, "a second stored session")
    newest, oldest = listed[0], listed[-1]
    assert oldest.ended_at is not None and oldest.turn_count > 0 and newest.turn_count == 0
    update = await stack.sim.wait_for(
        lambda ev: (
            ev.get("type") == "session.update" and ev.get("_conn") != stack.sim.received[0].get("_conn")
        )
    )
    assert "What time is it?" not in update["session"]["instructions"]  # a reset remembers nothing


async def test_with_focus_gone_a_press_is_refused_aloud_and_works_again_once_focus_is_back(
    nc: Client, settings: HuxleySettings, tmp_path: Path
) -> None:
    statuses = await Heard.on(nc, Subjects(settings.site).bridge_event("status"), bm.StatusEvent)
    focus = FocusService(with_identity(settings_of(FocusSettings, settings), FocusService.name))
    await focus.start()
    async with stack_without_focus(nc, settings, tmp_path) as stack:
        await focus.stop()  # focus dies: the bridge must say so, not hang or crash
        await stack.press("1", "p1")
        cancelled = await stack.wait_turn("cancelled")
        await statuses.wait_for(lambda s: True)
        said = [s.message for s in statuses.items]
        assert any("speaker" in s or "focus" in s for s in said), said
        assert stack.bridge.health()[1]["connected"]
        focus = FocusService(with_identity(settings_of(FocusSettings, settings), FocusService.name))
        await focus.start()
        try:
            await stack.press("1", "p2")
            ended = await stack.wait_turn("ended")
            assert ended.turn_id != cancelled.turn_id and ended.kind == "user"
        finally:
            await focus.stop()


async def test_the_next_start_is_told_the_last_conversations_summary(
    nc: Client, settings: HuxleySettings, tmp_path: Path
) -> None:
    async with stack_of(nc, settings, tmp_path) as stack:
        await stack.ask_the_time()
    async with stack_of(nc, settings, tmp_path) as again:  # a restart: same storage, a new bridge
        update = await again.sim.wait_for("session.update")
    instructions = update["session"]["instructions"]
    assert SUMMARY_HEADING in instructions and "What time is it?" in instructions


async def test_the_kill_switch_closes_the_session_and_a_restart_the_same_day_keeps_it_closed(
    nc: Client, settings: HuxleySettings, tmp_path: Path
) -> None:
    costs = await Heard.on(nc, Subjects(settings.site).bridge_event("cost"), bm.CostEvent)
    limits = {"cost_warn_usd": 0.00001, "cost_canary_usd": 0.00002, "cost_kill_usd": 0.00003}
    async with stack_of(nc, settings, tmp_path, **limits) as stack:
        await wait_tools(stack, "get_current_time")
        await stack.press("1", "p1")  # the first response already costs more than the limit
        await costs.wait_for(lambda cost: cost.level == "kill")

        async def closed() -> bm.BridgeSnapshot | None:  # the socket closes behind the event
            snap = await stack.snapshot()
            return None if snap.connected else snap

        snap = await until(closed, 10, "the model session to close")
        assert snap.state == "IDLE" and snap.cost_usd_today > 0.00003
    levels = [cost.level for cost in costs.items]
    assert levels.count("kill") == 1  # crossing all three at once says the highest
    async with stack_of(nc, settings, tmp_path, **limits) as again:
        assert again.bridge.adapter is not None and again.bridge.adapter.lifecycle.state == "budget"
        assert (await again.snapshot()).cost_usd_today == snap.cost_usd_today  # restored from storage
        assert again.sim.connects == 0
