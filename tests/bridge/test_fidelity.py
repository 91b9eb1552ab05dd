"""What the user heard is what the model and the house remember (issue 14's
bridge items), and model errors and a broken publisher show in health
(issue 13): the bridge service on the real bus against the simulator."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from nats.aio.client import Client

from huxley_runtime.settings import HuxleySettings
from huxley_wire.messages import audio as am
from huxley_wire.messages import bridge as bm
from support.waiting import until

from .stack import VOICE, Heard, Stack, stack_of, wait_ready, wait_tools
from .test_exchanges import inject

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
  - name: paced
    text: ["paced story"]
    say: "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen"
    speed: 1.0
  - name: story
    text: ["fast story"]
    say: "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar"
  - name: sister
    text: ["my sister"]
    say: "Noted, your sister Ana."
  - name: flowers
    text: ["flowers"]
    say: "I will remind you about the flowers."
"""
FAST = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar"


@contextlib.asynccontextmanager
async def fidelity(
    nc: Client, settings: HuxleySettings, tmp_path: Path, **bridge: Any
) -> AsyncIterator[tuple[Stack, Heard[bm.TranscriptEvent], Heard[am.PlayedEvent]]]:
    async with stack_of(nc, settings, tmp_path, rules=RULES, **bridge) as s:
        transcripts = await Heard.on(nc, s.subjects.bridge_event("transcript"), bm.TranscriptEvent)
        played = await Heard.on(nc, s.subjects.audio_played(), am.PlayedEvent)
        await wait_tools(s, "get_current_time")
        yield s, transcripts, played


async def test_a_press_after_playback_caught_up_truncates_the_reply_at_what_was_played(
    nc: Client, settings: HuxleySettings, tmp_path: Path
) -> None:
    async with fidelity(nc, settings, tmp_path) as (s, _, played):
        s.sim.set_fault(hold_after_ms=400)  # the model stalls; the speaker catches up with it
        await inject(s, "inj-1", "paced story")
        speaking = await s.wait_turn("speaking")
        stream = speaking.activity_id
        await played.wait_for(lambda p: p.stream_id == stream and p.played_ms >= 400)
        await s.press("1", "p2")
        cancel = await s.sim.wait_for("response.cancel")
        truncate = await s.sim.wait_for("conversation.item.truncate")
        assert s.sim.received.index(cancel) < s.sim.received.index(truncate)
        assert truncate["audio_end_ms"] == 400  # all of it was heard, and nothing the model makes later
    assert [ev for ev in s.sim.received if ev.get("type") == "error"] == []


async def test_a_cancelled_reply_is_shown_and_remembered_as_far_as_it_was_heard(
    nc: Client, settings: HuxleySettings, tmp_path: Path
) -> None:
    async with fidelity(nc, settings, tmp_path) as (s, transcripts, played):
        await inject(s, "inj-1", "fast story")  # all its audio and its transcript arrive at once
        speaking = await s.wait_turn("speaking")
        stream = speaking.activity_id
        await played.wait_for(lambda p: p.stream_id == stream and p.played_ms >= 300)
        await s.press("1", "p2")
        truncate = await s.sim.wait_for("conversation.item.truncate")
        line = await transcripts.wait_for(lambda t: t.role == "assistant" and t.turn_id == speaking.turn_id)
        words = line.text.split()
        assert 0 < len(words) < len(FAST.split()) and FAST.startswith(line.text)
        heard = truncate["audio_end_ms"] / (len(VOICE.render_now(FAST)) / 48)
        assert abs(len(words) - round(heard * len(FAST.split()))) <= 1  # the words in proportion
        lines = list(s.bridge.adapter.lifecycle.transcript.lines) if s.bridge.adapter else []
        assert ("assistant", FAST) not in lines and ("assistant", line.text) in lines  # the summary's


async def test_the_assistant_text_streams_live_as_transcript_deltas(
    nc: Client, settings: HuxleySettings, tmp_path: Path
) -> None:
    async with fidelity(nc, settings, tmp_path) as (s, transcripts, _):
        deltas = await Heard.on(nc, s.subjects.bridge_event("transcript_delta"), bm.TranscriptDeltaEvent)
        await inject(s, "inj-1", "paced story")
        first = await deltas.wait_for(lambda d: True)
        line = await transcripts.wait_for(lambda t: t.role == "assistant")
        assert first.turn_id == line.turn_id and first.item_id
        # the first words show while the rest is still being said
        assert deltas.items.index(first) == 0 and first.delta != line.text
        assert "".join(d.delta for d in deltas.items if d.item_id == first.item_id) == line.text


async def test_summaries_chain_across_two_drops(nc: Client, settings: HuxleySettings, tmp_path: Path) -> None:
    async with fidelity(nc, settings, tmp_path, reconnect_delays_s=(0.1,)) as (s, transcripts, _):
        for n, prompt in enumerate(["my sister", "flowers"], start=1):
            await inject(s, f"inj-{n}", prompt)
            await s.wait_turn("ended", count=n)
            await transcripts.wait_for(lambda t: t.role == "assistant", count=n)
            s.sim.drop_all()
            await s.sim.wait_connections(n + 1)
            await wait_ready(s)  # focus fires the next inject only once the bridge says ready
        third = await s.sim.wait_for(
            lambda ev: ev.get("type") == "session.update" and "flowers" in ev["session"]["instructions"]
        )
        assert "Ana" in third["session"]["instructions"]  # the first session's context survived two drops


async def test_a_rejected_session_update_shows_in_health_and_to_the_client(
    nc: Client, settings: HuxleySettings, tmp_path: Path
) -> None:
    async with fidelity(nc, settings, tmp_path, reconnect_delays_s=(0.1,)) as (s, _, _played):
        statuses = await Heard.on(nc, s.subjects.bridge_event("status"), bm.StatusEvent)
        assert s.bridge.health()[0] == "ok"
        s.sim.reject_next_update("invalid_value", "Invalid value: 'nova2'. Supported values are...")
        s.sim.drop_all()  # the next session's session.update is refused
        await statuses.wait_for(lambda st: "nova2" in st.message)
        status, detail = s.bridge.health()
        assert status == "degraded" and "nova2" in detail["reason"] and detail["connected"]
        s.sim.drop_all()  # a session that takes its settings is ok again
        await s.sim.wait_connections(3)

        def healthy() -> bool:
            return s.bridge.health()[0] == "ok"

        await until(healthy, 10, "health ok after a clean connect")


async def test_a_server_error_mid_response_ends_the_turn_with_a_status(
    nc: Client, settings: HuxleySettings, tmp_path: Path
) -> None:
    async with fidelity(nc, settings, tmp_path) as (s, _, _played):
        statuses = await Heard.on(nc, s.subjects.bridge_event("status"), bm.StatusEvent)
        s.sim.set_fault(error_after_ms=300)  # no response.done follows
        await inject(s, "inj-1", "fast story")
        ended = await s.wait_turn("ended")
        assert ended.inject_id == "inj-1"
        await statuses.wait_for(lambda st: "could not answer" in st.message)

        async def released() -> bool:
            snap = await s.snapshot()
            return snap.turn_id is None

        await until(released, 10, "the turn to close")
        await inject(s, "inj-2", "what time")  # the session still answers
        assert (await s.wait_turn("ended", count=2)).inject_id == "inj-2"


async def test_health_is_not_ok_when_bridge_events_cannot_be_published(
    nc: Client, settings: HuxleySettings, tmp_path: Path
) -> None:
    async with fidelity(nc, settings, tmp_path, reconnect_delays_s=(0.1,)) as (s, _, _played):
        assert s.bridge.health()[0] == "ok"
        await s.bridge.nc.close()  # the bridge's publisher is gone; the model is still there
        s.sim.drop_all()  # the drop is news the bridge must publish (session, state, status)

        def degraded() -> Any:
            status, detail = s.bridge.health()
            return status == "degraded" and detail.get("reason")

        reason = await until(degraded, 10, "health degraded")
        assert "bridge.event" in reason
