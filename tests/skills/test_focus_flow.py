"""Streams, claims and injects of skills through the real focus service on a
real nats-server; the test plays the realtime bridge (holder `bridge`): it
calls tools, ends turns with the pending effect, and answers run_inject."""

from __future__ import annotations

import asyncio
import json

from huxley_focus.service import FocusService
from huxley_focus.settings import FocusSettings
from huxley_sdk import ClaimEndReason
from huxley_skill_host.service import SkillHostService
from huxley_wire.audio import AudioFrame, encode_frame, now_us
from huxley_wire.codec import encode
from huxley_wire.messages.focus import EndReason
from huxley_wire.messages.skills import DiscardEffect
from huxley_wire.subjects import Subjects
from skills.bus import BridgeStandIn, FrameTap, call_tool, eventually
from support.frames import places
from support.services import running


async def ready(host: SkillHostService, *skills: str) -> None:
    await eventually(lambda: all(host.slots[name].serving for name in skills) and host.focus.lease_ok)


async def test_a_stream_plays_through_focus_to_its_end_and_asks_for_completion(
    nc, site, bridge, host_settings
):
    tap = await FrameTap().start(nc, site)
    async with running(SkillHostService, host_settings("echo")) as host:
        await ready(host, "echo")
        turn = await bridge.user_turn()
        reply = await call_tool(nc, site, "echo", "short_stream", {"ms": 200})
        ended = await bridge.end_turn(turn, reply)
        assert ended.outcome == "started_stream"
        stream = ended.effect_activity_id
        assert stream is not None
        await tap.wait_for(lambda frames: any(f.stream == stream and f.eos for f in frames))
        frames = tap.of(stream)
        assert sum(len(f.pcm) for f in frames) == 200 * 48
        assert [f.seq for f in frames] == places(frames)
        completion = await bridge.completions.wait_for(lambda c: True)
        assert completion.prompt == "Say the stream ended." and completion.silence_ms == 100
        assert completion.skill == "echo" and completion.effect_id == reply["side_effect"]["effect_id"]
        snapshot = await bridge.focus.snapshot()
        assert all(view.activity_id != stream for views in snapshot.channels.values() for view in views)


async def test_a_stream_pauses_under_a_turn_and_resumes_where_it_stopped(nc, site, bridge, host_settings):
    tap = await FrameTap().start(nc, site)
    async with running(SkillHostService, host_settings("echo")) as host:
        await ready(host, "echo")
        skill = host.slots["echo"].skill
        turn = await bridge.user_turn()
        reply = await call_tool(nc, site, "echo", "long_stream", {"patience_ms": 60_000})
        assert reply["side_effect"]["patience_ms"] == 60_000
        stream = (await bridge.end_turn(turn, reply)).effect_activity_id
        assert stream is not None
        await tap.wait_for(lambda frames: len([f for f in frames if f.stream == stream]) >= 10)

        # A turn takes DIALOG: the book goes to the background and must pause.
        second = await bridge.user_turn()
        await eventually(lambda: any(e.startswith("saved@") for e in skill.stream_ends))
        paused_at = len(tap.of(stream))
        saved = int(skill.stream_ends[-1].removeprefix("saved@"))
        await asyncio.sleep(0.3)  # a bound for "no frame while paused", not a synchronization
        assert len(tap.of(stream)) == paused_at

        # The turn ends: FOREGROUND again, the factory is called anew from the saved position.
        await bridge.end_turn(second)
        await tap.wait_for(lambda frames: len([f for f in frames if f.stream == stream]) >= paused_at + 5)
        assert skill.starts == [0, saved]
        resumed = tap.of(stream)[paused_at]
        assert resumed.seq == paused_at and resumed.pcm[0] == saved % 251
        assert all(f.pcm == bytes([f.pcm[0]]) * 960 for f in tap.of(stream))


async def test_patience_runs_out_the_hook_runs_and_the_stream_stops(nc, site, bridge, host_settings):
    tap = await FrameTap().start(nc, site)
    async with running(SkillHostService, host_settings("echo")) as host:
        await ready(host, "echo")
        skill = host.slots["echo"].skill
        turn = await bridge.user_turn()
        reply = await call_tool(nc, site, "echo", "long_stream", {"patience_ms": 300})
        stream = (await bridge.end_turn(turn, reply)).effect_activity_id
        await tap.wait_for(lambda frames: any(f.stream == stream for f in frames))
        second = await bridge.user_turn()
        await eventually(lambda: stream not in host.players)
        assert skill.patience_hooks == 1
        await bridge.end_turn(second)
        await asyncio.sleep(0.3)  # a bound: a stopped stream never comes back
        assert stream not in host.players and len(skill.starts) == 1


async def test_injects_reach_focus_and_inject_and_wait_waits_for_done(nc, site, bridge, host_settings):
    async with running(SkillHostService, host_settings("echo,nagger")) as host:
        await ready(host, "echo", "nagger")
        assert (await call_tool(nc, site, "nagger", "nag"))["output"] == "nagged"
        run = await bridge.run_injects.wait_for(lambda r: r.priority == "preempt")
        assert run.prompt == "Tell the user: nag"
        await bridge.focus.turn_end(run.activity_id, inject_id=run.inject_id)

        asked = asyncio.create_task(call_tool(nc, site, "echo", "ask", {"prompt": "Tell the user: hi"}))
        run = await bridge.run_injects.wait_for(lambda r: r.prompt == "Tell the user: hi")
        await asyncio.sleep(0.2)  # a bound: the tool must still be waiting for `done`
        assert not asked.done()
        await bridge.focus.turn_end(run.activity_id, inject_id=run.inject_id)
        assert (await asyncio.wait_for(asked, 10))["output"] == "asked"


async def test_inject_and_wait_returns_at_once_when_queued(nc, site, bridge, host_settings):
    async with running(SkillHostService, host_settings("echo")) as host:
        await ready(host, "echo")
        turn = await bridge.user_turn()  # a live turn: the inject queues
        reply = await asyncio.wait_for(
            call_tool(nc, site, "echo", "ask", {"prompt": "Tell the user: later"}), 10
        )
        assert reply["output"] == "asked"
        ended = await bridge.end_turn(turn)
        assert ended.outcome == "fired_inject"


async def test_a_claim_hears_the_mic_and_ends_once_on_ptt(nc, site, bridge, host_settings):
    async with running(SkillHostService, host_settings("caller")) as host:
        await ready(host, "caller")
        skill = host.slots["caller"].skill
        turn = await bridge.user_turn()
        reply = await call_tool(nc, site, "caller", "call")
        assert reply["side_effect"]["kind"] == "input_claim" and reply["side_effect"]["title"] == "Intercom"
        ended = await bridge.end_turn(turn, reply)
        assert ended.outcome == "started_claim"
        await eventually(lambda: any(s.granted_at for s in host.live_claims))
        [session] = host.live_claims
        await eventually(lambda: session._mic is not None)
        mic = Subjects(site).audio_mic_claim(host.holder)
        for seq in range(3):
            await nc.publish(mic, encode_frame(AudioFrame("mic", seq, now_us(), bytes([seq]) * 960)))
        await eventually(lambda: len(skill.heard) == 3)
        interrupted = await bridge.focus.interrupt(EndReason.USER_PTT)
        assert interrupted.ended_claim
        await eventually(lambda: skill.ends)
        await asyncio.sleep(0.2)  # a bound: a second end would show up here
        assert skill.ends == [ClaimEndReason.USER_PTT] and not host.live_claims


async def test_a_discarded_claim_still_hears_its_end_once(nc, site, bridge, host_settings):
    async with running(SkillHostService, host_settings("caller")) as host:
        await ready(host, "caller")
        skill = host.slots["caller"].skill
        reply = await call_tool(nc, site, "caller", "call")
        effect_id = reply["side_effect"]["effect_id"]
        discard = DiscardEffect(effect_id=effect_id, reason="user_ptt")
        subject = Subjects(site).skill_host_rpc(reply["host"])
        assert json.loads((await nc.request(subject, encode(discard), timeout=5)).data) == {
            "v": 1,
            "ok": True,
        }
        assert json.loads((await nc.request(subject, encode(discard), timeout=5)).data) == {
            "v": 1,
            "ok": True,
        }
        assert skill.ends == [ClaimEndReason.USER_PTT]


async def test_a_direct_claim_is_busy_while_one_is_live(nc, site, bridge, host_settings):
    async with running(SkillHostService, host_settings("caller")) as host:
        await ready(host, "caller")
        skill = host.slots["caller"].skill
        assert json.loads((await call_tool(nc, site, "caller", "call_now"))["output"]) == {"busy": None}
        busy = json.loads((await call_tool(nc, site, "caller", "call_now"))["output"])["busy"]
        assert busy and "already live" in busy
        assert json.loads((await call_tool(nc, site, "caller", "hang_up"))["output"]) == {"ended": True}
        await eventually(lambda: skill.ends == [ClaimEndReason.NATURAL])
        assert json.loads((await call_tool(nc, site, "caller", "hang_up"))["output"]) == {"ended": False}


async def test_a_claim_dropped_at_the_barrier_hears_preempted_once(nc, site, bridge, host_settings):
    async with running(SkillHostService, host_settings("caller,nagger")) as host:
        await ready(host, "caller", "nagger")
        skill = host.slots["caller"].skill
        turn = await bridge.user_turn()
        assert (await call_tool(nc, site, "nagger", "nag"))["output"] == "nagged"  # queued behind the turn
        reply = await call_tool(nc, site, "caller", "call")
        ended = await bridge.end_turn(turn, reply)
        assert ended.outcome == "fired_inject" and ended.dropped_effect == reply["side_effect"]["effect_id"]
        await eventually(lambda: skill.ends)
        await asyncio.sleep(0.2)  # a bound: a second end would show up here
        assert skill.ends == [ClaimEndReason.PREEMPTED] and len(host.held) == 0


async def test_an_unclaimed_effect_expires_and_its_claim_ends_with_error(nc, site, bridge, host_settings):
    async with running(SkillHostService, host_settings("caller", held_effect_ttl_s=0.3)) as host:
        await ready(host, "caller")
        skill = host.slots["caller"].skill
        await call_tool(nc, site, "caller", "call")  # the bridge never ends the turn with it
        await eventually(lambda: skill.ends)
        assert skill.ends == [ClaimEndReason.ERROR] and len(host.held) == 0


async def test_injects_are_retried_until_focus_answers_and_accepted_once(
    nc, site, nats_url, settings, host_settings
):
    async with running(SkillHostService, host_settings("nagger")) as host:
        await eventually(lambda: host.slots["nagger"].serving)
        nag = asyncio.create_task(call_tool(nc, site, "nagger", "nag"))
        await asyncio.sleep(0.5)  # focus is down: the inject keeps being retried
        assert not nag.done() and host.health()[1]["focus"] == "unreachable"
        async with running(FocusService, FocusSettings(**dict(settings), _env_file=None)):  # type: ignore[call-arg]
            stand_in = await BridgeStandIn(nc, site).start()
            try:
                run = await stand_in.run_injects.wait_for(lambda r: r.prompt == "Tell the user: nag")
                assert (await asyncio.wait_for(nag, 20))["output"] == "nagged"
                await stand_in.focus.turn_end(run.activity_id, inject_id=run.inject_id)
                await asyncio.sleep(0.5)  # a bound: a doubled inject would show up here
                assert len({r.inject_id for r in stand_in.run_injects.items}) == 1
            finally:
                await stand_in.stop()
