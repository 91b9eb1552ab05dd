"""Focus: acquire-to-grant round trip over the bus (with and without the
JetStream KV write), and transitions per second of the pure core — next to
the bare NATS request/reply measured in the same run."""

from __future__ import annotations

import time

from bench.harness import BASELINE_REQUEST_REPLY, BenchEnv, Measurement, latency, time_many
from huxley_focus.core import FocusCore
from huxley_focus.effects import Notice
from huxley_focus.service import FocusService
from huxley_focus.settings import FocusSettings
from huxley_runtime.focus_client import FocusClient
from huxley_runtime.logging import configure_logging
from huxley_wire.messages import focus as m
from huxley_wire.messages.focus import Channel, FocusChange
from huxley_wire.permissions import Role
from huxley_wire.subjects import Subjects

ROUNDS = 500


class Quiet:
    async def on_focus(self, change: FocusChange) -> None:
        pass

    async def on_patience_expired(self, activity_id: str) -> None:
        pass

    async def on_effect_dropped(self, effect_id: str, reason: str) -> None:
        pass


async def acquire_round_trip(env: BenchEnv, *, persist: bool) -> list[float]:
    """acquire() returns once focus decided, persisted, and the holder acked
    its FOREGROUND: that is the grant. Each round releases afterwards."""
    site = env.site()
    settings = FocusSettings(
        nats_url=env.nats_url,
        site=site,
        focus_persist=persist,
        **env.auth(site).fields(Role.FOCUS),
        _env_file=None,  # type: ignore[call-arg]
    )
    service = FocusService(settings)
    await service.start()
    nc = await env.connect(site)
    client = FocusClient(nc, Subjects(site), "bench-host", Quiet())
    await client.start()
    try:
        assert service._store is None or service._store.ready, "JetStream KV unavailable"

        async def cycle() -> None:
            reply = await client.acquire(Channel.CONTENT, "radio")
            await client.release(reply.activity_id)

        await time_many(cycle, 1, warmup=20)  # warm up; acquires are timed alone below
        samples = []
        for _ in range(ROUNDS):
            started = time.perf_counter()
            reply = await client.acquire(Channel.CONTENT, "radio")
            samples.append((time.perf_counter() - started) * 1e3)
            await client.release(reply.activity_id)
        return samples
    finally:
        await client.stop()
        await nc.close()
        await service.stop()


def core_transitions_per_second(seconds: float = 1.0) -> tuple[float, int]:
    """A book paused by a turn and resumed, over and over: every notice is one transition."""
    core = FocusCore()
    now = 1_000_000.0
    core.renew("bridge", now)
    transitions = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(200):
            now += 0.001
            book, fx1 = core.acquire(
                m.Acquire(holder="host", channel=Channel.CONTENT, interface="book", patience_ms=60_000), now
            )
            turn, fx2 = core.acquire(
                m.Acquire(holder="bridge", channel=Channel.DIALOG, interface="user"), now
            )
            _, fx3 = core.turn_end(m.TurnEnd(holder="bridge", activity_id=turn.activity_id), now)
            _, fx4 = core.release(m.Release(holder="host", activity_id=book.activity_id), now)
            core.renew("bridge", now)
            core.renew("host", now)
            transitions += sum(isinstance(e, Notice) for e in (*fx1, *fx2, *fx3, *fx4))
    elapsed = time.perf_counter() - started
    return transitions / elapsed, transitions


async def run(env: BenchEnv) -> list[Measurement]:
    configure_logging("bench", "bench", level="warning")
    persisted = await acquire_round_trip(env, persist=True)
    in_memory = await acquire_round_trip(env, persist=False)
    rate, count = core_transitions_per_second()
    return [
        latency(
            "focus.acquire_to_grant",
            persisted,
            baseline=BASELINE_REQUEST_REPLY,
            note="FocusClient.acquire over the bus: decide, write JetStream KV, notify the holder, "
            "await its ack, reply",
        ),
        latency(
            "focus.acquire_to_grant.no_persist",
            in_memory,
            baseline=BASELINE_REQUEST_REPLY,
            note="the same without the KV write (HUXLEY_FOCUS_PERSIST=0)",
        ),
        Measurement(
            name="focus.core.transitions_per_s",
            unit="ops/s",
            value=rate,
            n=count,
            note="pure core: acquire/turn/turn_end/release cycles, one transition per notice",
        ),
    ]
