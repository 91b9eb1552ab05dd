"""Session lifecycle: backoff and the cue, idle rotation with a summary,
daily cost thresholds, instructions and tools from persona and manifests."""

from __future__ import annotations

from pathlib import Path

import pytest

from huxley_bridge import commands as c
from huxley_bridge.cost import CostMeter, Level, Pricing, Thresholds, usage_cost
from huxley_bridge.instructions import SUMMARY_HEADING, Voice, compose_instructions, session_update
from huxley_bridge.lifecycle import (
    Announce,
    Close,
    Connect,
    LifecycleConfig,
    PlayCue,
    SessionLifecycle,
    StoreSummary,
    ToolsUpdated,
)
from huxley_bridge.reconnect import ReconnectSchedule
from huxley_bridge.tools import ToolRegistry
from huxley_runtime.persona import load_persona
from huxley_wire.messages.skills import Manifest, SkillManifest, ToolManifest

DAY = "2026-11-22"
VOICE = Voice("You are Huxley.", "alloy", "en")


def manifest(
    host: str, *skills: tuple[str, list[str], str], bye: bool = False, status: str = "ok"
) -> Manifest:
    return Manifest(
        host=host,
        persona="basic",
        bye=bye,
        skills=[
            SkillManifest(
                name=name,
                prompt_context=context,
                status=status,  # type: ignore[arg-type]
                tools=[
                    ToolManifest(name=t, description=f"{t} tool", parameters={"type": "object"})
                    for t in tools
                ],
            )
            for name, tools, context in skills
        ],
    )


def usage(
    text_in: int = 0, audio_in: int = 0, cached_text: int = 0, text_out: int = 0, audio_out: int = 0
) -> dict:
    return {
        "input_token_details": {
            "text_tokens": text_in,
            "audio_tokens": audio_in,
            "cached_tokens": cached_text,
            "cached_tokens_details": {"text_tokens": cached_text, "audio_tokens": 0},
        },
        "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out},
    }


def kinds(out: list) -> list[str]:
    return [type(x).__name__ if not isinstance(x, c.Publish) else f"Publish:{x.kind}" for x in out]


def test_backoff_is_1_3_10_30_then_60_with_a_cue_from_the_4th_attempt() -> None:
    life = SessionLifecycle(LifecycleConfig(), VOICE)
    now = 0.0
    assert isinstance(life.start(now, DAY)[0], Connect)
    delays, cues = [], []
    for _ in range(7):
        life.connect_failed(now, "refused")
        assert life.next_attempt_at is not None
        delays.append(life.next_attempt_at - now)
        now = life.next_attempt_at
        out = life.tick(now, DAY, busy=False)
        cues.append(any(isinstance(x, PlayCue) for x in out))
        assert any(isinstance(x, Connect) for x in out)
    assert delays == [1, 3, 10, 30, 60, 60, 60]
    assert cues == [False, False, False, True, True, True, True]


def test_a_connection_that_held_resets_the_backoff_one_that_flaps_does_not() -> None:
    schedule = ReconnectSchedule(stable_after_s=60)
    assert schedule.lost(0) == 1
    schedule.succeeded(2)
    assert schedule.lost(3) == 3  # dropped right away: keep climbing
    schedule.succeeded(10)
    assert schedule.lost(200) == 1  # held for minutes: start over


def test_connect_sends_the_session_and_tells_the_coordinator_the_tools() -> None:
    life = SessionLifecycle(LifecycleConfig(model="gpt-realtime"), VOICE)
    life.manifest(manifest("h1", ("system", ["get_current_time"], "Time zone: Europe/London.")), 0)
    life.start(0, DAY)
    out = life.connect_ok(0.5)
    update = next(x.event for x in out if isinstance(x, c.SendModel))
    assert update["session"]["tools"][0]["name"] == "get_current_time"
    assert update["session"]["audio"]["input"]["turn_detection"] is None
    assert "Time zone: Europe/London." in update["session"]["instructions"]
    assert next(x for x in out if isinstance(x, ToolsUpdated)).tools == {"get_current_time": "system"}
    states = [x.message.value for x in out if isinstance(x, c.Publish) and x.kind == "state"]  # type: ignore[attr-defined]
    assert states == ["CONVERSING"]


def test_drop_stores_a_summary_that_the_next_session_is_told() -> None:
    life = SessionLifecycle(LifecycleConfig(), VOICE)
    life.start(0, DAY)
    life.connect_ok(0)
    life.heard("user", "Set a timer for ten minutes for the pasta")
    life.heard("assistant", "Timer set for ten minutes.")
    out = life.dropped(5, "connection reset")
    summary = next(x for x in out if isinstance(x, StoreSummary)).text
    assert "pasta" in summary and "Timer set" in summary
    life.tick(6.1, DAY, busy=False)
    update = next(x.event for x in life.connect_ok(6.2) if isinstance(x, c.SendModel))
    assert (
        SUMMARY_HEADING in update["session"]["instructions"] and "pasta" in update["session"]["instructions"]
    )


def test_summaries_chain_so_two_drops_keep_the_first_sessions_context() -> None:
    life = SessionLifecycle(LifecycleConfig(), VOICE)
    life.start(0, DAY)
    life.connect_ok(0)
    life.heard("user", "My sister Ana arrives on Friday")
    life.dropped(5, "connection reset")
    life.tick(6.1, DAY, busy=False)
    life.connect_ok(6.2)
    life.heard("user", "Remind me to buy flowers")
    out = life.dropped(10, "connection reset")
    second = next(x for x in out if isinstance(x, StoreSummary)).text
    assert "Ana" in second and "flowers" in second
    assert second.index("Ana") < second.index("flowers")  # the earlier context first
    life.tick(20, DAY, busy=False)
    update = next(x.event for x in life.connect_ok(20.1) if isinstance(x, c.SendModel))
    assert "Ana" in update["session"]["instructions"] and "flowers" in update["session"]["instructions"]
    # a session with nothing new keeps telling the same summary
    assert [x for x in life.dropped(30, "reset") if isinstance(x, StoreSummary)] == []
    assert life.summary == second


def test_a_chained_summary_stays_bounded_dropping_the_oldest_context_first() -> None:
    life = SessionLifecycle(LifecycleConfig(), VOICE)
    life.start(0, DAY)
    now = 0.0
    for n in range(12):
        life.connect_ok(now)
        life.heard("user", f"fact number {n} " + "x" * 120)
        life.dropped(now + 1, "reset")
        now += 100
        life.tick(now, DAY, busy=False)
    assert life.summary is not None and len(life.summary) <= 700
    assert "fact number 11" in life.summary and "fact number 10" in life.summary
    assert "fact number 0 " not in life.summary


def test_an_error_answering_session_update_makes_the_session_not_ok_until_the_next_connect() -> None:
    life = SessionLifecycle(LifecycleConfig(), VOICE)
    life.start(0, DAY)
    update = next(x.event for x in life.connect_ok(0) if isinstance(x, c.SendModel))
    assert update["event_id"].startswith("session-update-")
    assert life.model_error("other-1", "invalid_value", "nope") == []  # not ours to judge
    out = life.model_error(update["event_id"], "invalid_value", "Invalid voice")
    assert life.rejected is not None and "Invalid voice" in life.rejected
    statuses = [x.message.message for x in out if isinstance(x, c.Publish) and x.kind == "status"]  # type: ignore[attr-defined]
    assert statuses and "Invalid voice" in statuses[0]
    life.dropped(1, "reset")
    life.tick(5, DAY, busy=False)
    life.connect_ok(5)
    assert life.rejected is None


def test_idle_limit_rotates_the_session_with_a_summary_and_no_backoff() -> None:
    life = SessionLifecycle(LifecycleConfig(idle_limit_s=3300), VOICE)
    life.start(0, DAY)
    life.connect_ok(0)
    life.heard("user", "hello")
    assert life.tick(3000, DAY, busy=False) == []
    assert life.tick(3300, DAY, busy=True) == []  # never under a live turn
    assert life.next_deadline() == 3300 + 3300
    out = life.tick(6600, DAY, busy=False)
    assert [type(x) for x in out] == [Close]
    assert out[0].reason == "idle"  # type: ignore[union-attr]
    out = life.dropped(6600.1, "closed")
    assert kinds(out)[:2] == ["StoreSummary", "Connect"]
    assert next(x for x in out if isinstance(x, Connect)).attempt == 0


def test_cost_thresholds_warn_canary_and_kill_switch_until_tomorrow() -> None:
    meter = CostMeter(Pricing(), Thresholds(warn_usd=0.5, canary_usd=5, kill_usd=20))
    life = SessionLifecycle(LifecycleConfig(), VOICE, meter=meter)
    life.start(0, DAY)
    life.connect_ok(0)
    ten_cents = usage(audio_out=1562, text_out=1)  # 1562 * 64e-6 ~ 0.0999
    levels = []
    for _ in range(220):
        out = life.usage(ten_cents, DAY)
        levels += [x.message.level for x in out if isinstance(x, c.Publish) and x.kind == "cost"]  # type: ignore[attr-defined]
        if any(isinstance(x, Close) for x in out):
            break
    assert levels == ["warn", "canary", "kill"]
    assert life.state == "budget" and meter.usd == pytest.approx(20.0, abs=0.11)
    assert life.tick(10_000, DAY, busy=False) == []  # no reconnect today
    out = life.tick(10_001, "2026-11-23", busy=False)
    assert any(isinstance(x, Connect) for x in out) and meter.usd == 0


def test_usage_is_priced_per_token_kind() -> None:
    p = Pricing()
    cost = usage_cost(usage(text_in=1000, audio_in=2000, cached_text=400, text_out=100, audio_out=500), p)
    expected = (600 * 4 + 400 * 0.4 + 2000 * 32 + 100 * 16 + 500 * 64) / 1e6
    assert cost == pytest.approx(expected)
    assert usage_cost({"input_tokens": 1000, "output_tokens": 10}, p) == pytest.approx(
        (1000 * 4 + 10 * 64) / 1e6
    )
    assert usage_cost({}, p) == 0


def test_restored_spend_keeps_the_kill_switch_on() -> None:
    meter = CostMeter(Pricing(), Thresholds())
    meter.restore(DAY, 25.0)
    assert meter.level == Level.KILL
    life = SessionLifecycle(LifecycleConfig(), VOICE, meter=meter)
    assert not any(isinstance(x, Connect) for x in life.start(0, DAY))
    assert life.state == "budget"


def test_offline_is_one_clear_message_and_never_connects() -> None:
    life = SessionLifecycle(LifecycleConfig(offline_message="OPENAI_API_KEY is not set"), VOICE)
    out = life.start(0, DAY)
    assert not any(isinstance(x, Connect) for x in out)
    sessions = [x.message for x in out if isinstance(x, c.Publish) and x.kind == "session"]
    assert len(sessions) == 1 and sessions[0].offline and "OPENAI_API_KEY" in sessions[0].message  # type: ignore[attr-defined]
    assert life.tick(10_000, DAY, busy=False) == []


def test_tools_follow_hosts_appearing_leaving_and_going_silent() -> None:
    life = SessionLifecycle(LifecycleConfig(), VOICE, registry=ToolRegistry(stale_after_s=35))
    life.start(0, DAY)
    life.connect_ok(0)
    out = life.manifest(manifest("h1", ("timers", ["set_timer"], "")), 1)
    assert next(x for x in out if isinstance(x, ToolsUpdated)).tools == {"set_timer": "timers"}
    refresh = next(x.event for x in out if isinstance(x, c.SendModel))
    assert "audio" not in refresh["session"]  # a refresh leaves the voice alone
    assert life.manifest(manifest("h1", ("timers", ["set_timer"], "")), 11) == []  # unchanged: quiet
    out = life.manifest(
        manifest("h2", ("system", ["get_current_time"], ""), ("timers", ["set_timer"], "")), 12
    )
    assert next(x for x in out if isinstance(x, ToolsUpdated)).tools == {
        "set_timer": "timers",
        "get_current_time": "system",
    }
    out = life.manifest(manifest("h1", bye=True), 13)
    assert out == []  # h2 still serves timers: nothing changed
    out = life.tick(12 + 36, DAY, busy=False)  # h2 went silent
    assert next(x for x in out if isinstance(x, ToolsUpdated)).tools == {}


def test_serving_skills_only_and_clashing_skills_refused_whole() -> None:
    registry = ToolRegistry()
    registry.apply(manifest("h1", ("a", ["shared", "only_a"], "")), 0)
    registry.apply(manifest("h2", ("b", ["shared", "only_b"], "")), 0)
    registry.apply(manifest("h3", ("broken", ["nope"], ""), status="failed"), 0)
    registry.apply(manifest("h4", ("tired", ["slow"], ""), status="degraded"), 0)
    registry.apply(manifest("h5", ("booting", ["later"], ""), status="starting"), 0)
    assert registry.tools() == {"shared": "a", "only_a": "a", "slow": "tired"}
    assert registry.conflicts == ["tool 'shared' is declared by both skill 'a' and skill 'b'; 'b' refused"]
    assert [d["name"] for d in registry.definitions()] == ["shared", "only_a", "slow"]


def test_instructions_are_persona_constraints_skills_and_summary() -> None:
    persona = load_persona("basic", Path(__file__).parents[2] / "personas")
    voice = Voice.of(persona, "es")
    assert voice.transcription_language == "es" and voice.instructions.startswith("Eres Huxley")
    text = compose_instructions(voice.instructions, ["Books: Moby Dick."], "The user said hi.")
    assert (
        text.index("Eres Huxley")
        < text.index("say what will happen")
        < text.index("Moby Dick")
        < text.index("said hi")
    )
    update = session_update(
        voice, model="m", transcription_model="whisper-1", prompt_contexts=[], tools=[], summary=None
    )
    assert update["session"]["audio"]["input"]["transcription"] == {"model": "whisper-1", "language": "es"}
    assert update["session"]["audio"]["output"] == {
        "format": {"type": "audio/pcm", "rate": 24000},
        "voice": "alloy",
    }


def test_reconnect_cue_is_short_audible_pcm() -> None:
    from huxley_bridge.cue import reconnect_cue
    from huxley_wire.audio import BYTES_PER_MS, level_dbfs

    pcm = reconnect_cue()
    assert len(pcm) % 2 == 0 and 300 <= len(pcm) / BYTES_PER_MS <= 600
    assert -30 < level_dbfs(pcm) < -6


def test_reset_starts_a_conversation_that_remembers_nothing() -> None:
    life = SessionLifecycle(LifecycleConfig(), VOICE)
    life.start(0, DAY)
    life.connect_ok(0)
    life.heard("user", "my name is Ada")
    out = life.reset()
    assert [type(x) for x in out] == [Close] and out[0].reason == "reset"  # type: ignore[union-attr]
    out = life.dropped(1, "closed")
    assert not any(isinstance(x, StoreSummary) for x in out)
    assert any(isinstance(x, Connect) for x in out)
    update = next(x.event for x in life.connect_ok(1.1) if isinstance(x, c.SendModel))
    assert "Ada" not in update["session"]["instructions"]


def test_set_language_refreshes_prompt_and_transcription_and_asks_skills_to_reannounce() -> None:
    life = SessionLifecycle(LifecycleConfig(), VOICE)
    life.start(0, DAY)
    life.connect_ok(0)
    persona = load_persona("basic", Path(__file__).parents[2] / "personas")
    out = life.set_language(Voice.of(persona, "es"), "es")
    assert next(x for x in out if isinstance(x, Announce)).language == "es"
    update = next(x.event for x in out if isinstance(x, c.SendModel))["session"]
    assert update["instructions"].startswith("Eres Huxley")
    assert update["audio"] == {"input": {"transcription": {"model": "whisper-1", "language": "es"}}}


def test_wake_word_cuts_the_backoff_short_but_not_the_count() -> None:
    life = SessionLifecycle(LifecycleConfig(), VOICE)
    life.start(0.0, DAY)
    life.connect_failed(0.0, "refused")
    life.tick(1.0, DAY, busy=False)
    life.connect_failed(1.0, "refused")  # next attempt in 3 s
    out = life.wake(1.5)
    assert [type(x) for x in out if isinstance(x, Connect)] == [Connect]
    assert life.state == "connecting" and life.next_attempt_at is None
    life.connect_failed(1.6, "refused")
    assert life.next_attempt_at == pytest.approx(1.6 + 10)  # the third wait, not the first
    connected = SessionLifecycle(LifecycleConfig(), VOICE)
    connected.start(0.0, DAY)
    connected.connect_ok(0.1)
    assert connected.wake(0.2) == [] and connected.state == "connected"
