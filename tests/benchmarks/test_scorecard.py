"""The bench's verdict on issue 15's lines: worked out from one run's figures."""

from __future__ import annotations

from dataclasses import replace

from bench.harness import Measurement
from bench.scorecard import score, to_markdown


def lat(name: str, p50: float, p99: float) -> Measurement:
    return Measurement(name, "ms", p50=p50, p99=p99)


def val(name: str, value: float) -> Measurement:
    return Measurement(name, "-", value=value)


def passing_run() -> dict[str, Measurement]:
    run = [
        lat("nats.request_reply", 0.4, 0.6),
        val("nats.request_reply_throughput", 10_000),
        lat("paths.nats.paced", 0.6, 1.0),
        lat("paths.nats.burst_last", 0.7, 1.2),
        *(lat(f"paths.{p}.paced", 0.7, 1.5) for p in ("skill_stream", "mic_append", "model_audio")),
        *(lat(f"paths.{p}.burst_last", 0.8, 1.7) for p in ("skill_stream", "mic_append", "model_audio")),
        lat("transport.nats.paced", 0.6, 1.0),
        lat("transport.nats.burst_last", 0.6, 1.1),
        lat("transport.mqtt.paced", 0.6, 1.0),
        lat("transport.mqtt.burst_last", 0.6, 1.2),
        lat("transport.wyoming.paced", 0.5, 0.9),
        lat("transport.wyoming.burst_last", 0.5, 0.9),
        val("storage.sqlite.set_acked", 2_500),
        lat("storage.sqlite.get", 0.6, 0.9),
        val("storage.postgresql.set_acked", 1_000),
        lat("storage.postgresql.get", 0.7, 1.0),
        lat("audio.ptt_to_silent_mixer_output", 0.5, 9.9),
        lat("bridge.procs.idle_request_reply", 1.0, 2.0),
        lat("bridge.procs.idle_inject_to_conversation_item", 2.4, 4.0),
        val("startup.up_to_all_healthy", 2.9),
        val("startup.stack_pss", 299),
        val("bus.idle_messages_per_s", 1.9),
        val("audio.streams_max_concurrent", 500),
        val("audio.streams_250_bad_blocks", 0.0),
        val("audio.streams_500_bad_blocks", 0.9),
    ]
    return {m.name: m for m in run}


def test_a_run_within_every_bound_meets_every_line() -> None:
    lines = score(passing_run())
    assert [line.met for line in lines] == [True] * len(lines)
    assert f"{len(lines)} of {len(lines)} met" in "\n".join(to_markdown(lines))


def test_each_bound_comes_from_the_same_runs_baseline() -> None:
    run = passing_run()
    run["paths.model_audio.burst_last"] = lat("paths.model_audio.burst_last", 0.8, 1.701)  # bare 1.2 + 0.5
    run["transport.nats.burst_last"] = lat("transport.nats.burst_last", 0.6, 1.21)  # MQTT 1.2
    run["storage.sqlite.get"] = lat("storage.sqlite.get", 0.61, 0.9)  # 1.5 x 0.4 = 0.6
    run["storage.sqlite.set_acked"] = val("storage.sqlite.set_acked", 2_499)  # 0.25 x 10k
    missed = {line.claim for line in score(run) if line.met is False}
    assert missed == {
        "our paths, last of a burst: p99 <= bare NATS p99 + 0.5 ms",
        "bare NATS p99 <= MQTT p99, paced and last of a burst",
        "SQLite get p50 <= 1.5x bare request/reply",
        "SQLite acknowledged sets >= 0.25x bare NATS request throughput",
    }
    # A faster bare run on the same figures moves the bounds with it.
    run = passing_run()
    run["nats.request_reply"] = lat("nats.request_reply", 0.39, 0.6)
    assert [line.claim for line in score(run) if line.met is False] == [
        "SQLite get p50 <= 1.5x bare request/reply",
        "the same against the back-to-back bare request/reply",
    ]


def test_the_inject_is_judged_against_both_request_replies() -> None:
    run = passing_run()
    run["bridge.procs.idle_inject_to_conversation_item"] = lat(
        "bridge.procs.idle_inject_to_conversation_item", 3.2, 5
    )
    verdicts = {line.claim: line.met for line in score(run)}
    assert verdicts["idle inject -> conversation item p50 <= 6x bare request/reply, taken idle too (PERF-12)"]
    assert verdicts["the same against the back-to-back bare request/reply"] is False  # 3.2 / 0.4 = 8x


def test_late_blocks_and_the_absolute_bounds() -> None:
    run = passing_run()
    run["audio.streams_max_concurrent"] = val("audio.streams_max_concurrent", 250)
    run["audio.ptt_to_silent_mixer_output"] = lat("audio.ptt_to_silent_mixer_output", 0.5, 10.01)
    run["bus.idle_messages_per_s"] = replace(run["bus.idle_messages_per_s"], value=2.01)
    missed = {line.claim for line in score(run) if line.met is False}
    assert missed == {
        ">= 500 concurrent output streams with < 1% late blocks",
        "PTT -> silent p99 <= 10 ms",
        "idle bus <= 2 messages/s",
    }


def test_a_figure_the_run_did_not_take_is_not_counted_as_met() -> None:
    run = passing_run()
    del run["transport.mqtt.paced"], run["storage.postgresql.get"]
    lines = score(run)
    unmeasured = [line for line in lines if line.met is None]
    assert [line.figure for line in unmeasured] == [
        "transport.mqtt.paced not measured",
        "storage.postgresql.get not measured",
    ]
    assert f"{len(lines) - 2} of {len(lines)} met" in "\n".join(to_markdown(lines))


def test_streams_show_each_level_from_500_and_take_the_bench_s_most() -> None:
    run = passing_run()
    run["audio.streams_750_bad_blocks"] = val("audio.streams_750_bad_blocks", 3.5)
    line = next(line for line in score(run) if line.claim.startswith(">= 500"))
    assert (line.figure, line.met) == ("500 streams (500: 0.90%, 750: 3.50% late blocks)", True)


def test_a_baseline_taken_beside_the_figure_is_preferred_to_the_shared_one() -> None:
    run = passing_run()
    run["nats.request_reply"] = lat("nats.request_reply", 0.9, 4.0)  # a busy spell at the start of the run
    run["nats.request_reply_alongside.sqlite"] = lat("nats.request_reply_alongside.sqlite", 0.39, 0.6)
    run["bridge.procs.request_reply"] = lat("bridge.procs.request_reply", 0.38, 0.6)
    lines = {line.claim: line for line in score(run)}
    get = lines["SQLite get p50 <= 1.5x bare request/reply"]
    assert (get.met, get.figure) == (False, "0.600 = 1.538x nats.request_reply_alongside.sqlite (0.390)")
    inject = lines["the same against the back-to-back bare request/reply"]
    assert (inject.met, inject.figure) == (False, "2.400 = 6.316x bridge.procs.request_reply (0.380)")
