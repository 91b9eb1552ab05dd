"""Storage over the bus: acknowledged sets per second and get/set latency, on
SQLite and on PostgreSQL, next to bare NATS request/reply from the same run.

The storage service runs as its own process (`python -m huxley_storage`)
against the harness's nats-server, as in production; every set is answered
only after its transaction committed (SQLite: WAL, synchronous=FULL).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from bench.harness import (
    BASELINE_REQUEST_REPLY,
    BenchEnv,
    Measurement,
    echo_here,
    echo_peer,
    latency,
    percentile,
    time_many,
)
from huxley_runtime.rpc import request_with_retry
from huxley_runtime.storage_client import SettingsClient
from huxley_wire.messages.common import HealthRequest
from huxley_wire.permissions import Role
from huxley_wire.subjects import Subjects

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
IN_FLIGHT = 16
BURST = 2000
SAMPLES = 1000
HALF = SAMPLES // 2
VALUE = '{"fire_at": "2026-11-22T10:00:00+00:00", "message": "tea", "id": 12345}'
BASELINE_THROUGHPUT = "nats.request_reply_throughput"


async def throughput(op: Callable[[int], Awaitable[Any]], total: int, in_flight: int) -> float:
    """Operations per second with `in_flight` requests outstanding."""
    queue = iter(range(total))

    async def worker() -> None:
        for n in queue:
            await op(n)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return total / (time.perf_counter() - started)


async def bare_throughput(env: BenchEnv) -> Measurement:
    site = env.site()
    responder = await env.connect(site)
    client = await env.connect(site)
    subject = f"huxley.{site}.bench.echo"

    async def echo(msg: Any) -> None:
        await msg.respond(msg.data)

    await responder.subscribe(subject, cb=echo)
    await responder.flush()
    await responder.flush()
    # The first request creates the client's reply inbox: set-up, not throughput.
    await client.request(subject, b'{"v":1}', timeout=5)
    value = await throughput(lambda n: client.request(subject, b'{"v":1}', timeout=5), BURST, IN_FLIGHT)
    await client.close()
    await responder.close()
    return Measurement(
        BASELINE_THROUGHPUT,
        "ops/s",
        value=value,
        n=BURST,
        note=f"bare NATS request/reply, {IN_FLIGHT} in flight",
    )


async def run_backend(env: BenchEnv, backend: str, url: str | None) -> list[Measurement]:
    site = env.site()
    subjects = Subjects(site)
    nc = await env.connect(site)
    environment = {
        **os.environ,
        **env.auth(site).env(Role.STORAGE),
        "HUXLEY_NATS_URL": env.nats_url,
        "HUXLEY_SITE": site,
        "HUXLEY_DATA_DIR": str(env.workdir / f"storage-{backend}"),
        "HUXLEY_STORAGE_BACKUPS": "0",
        "HUXLEY_STORAGE_PERSONAS": "bench",  # storage serves only configured personas
        "HUXLEY_LOG_LEVEL": "warning",
    }
    if url:
        environment["HUXLEY_STORAGE_URL"] = url
    proc = subprocess.Popen([sys.executable, "-m", "huxley_storage"], env=environment, start_new_session=True)
    try:
        async with echo_peer(env, site, "process") as echo, echo_here(env, site, "here") as here:
            health = await request_with_retry(
                nc, subjects.health("storage"), HealthRequest(), timeout=1, deadline_s=60
            )
            if health.status != "ok":
                raise RuntimeError(f"storage on {backend} is {health.status}: {health.detail}")
            kv = SettingsClient(nc, subjects, "bench", "timers", deadline_s=0, timeout_s=10)
            # Opens (and migrates) the persona's database and counts the skill's
            # quota usage: set-up, not throughput.
            await kv.set_setting("warm-up", VALUE)
            acked = await throughput(lambda n: kv.set_setting(f"timer:{n:05d}", VALUE), BURST, IN_FLIGHT)
            counter = iter(range(10**9))
            sets = await time_many(lambda: kv.set_setting(f"seq:{next(counter) % 100}", VALUE), SAMPLES // 2)
            # Gets, a bare responder in its own process and one in this process
            # (the shared baseline's set-up), in alternating halves, so all three
            # see the same moments of a shared machine.
            gets: list[float] = []
            bare: list[float] = []
            same: list[float] = []
            for _ in range(2):
                gets += await time_many(lambda: kv.get_setting(f"timer:{next(counter) % BURST:05d}"), HALF)
                bare += await time_many(lambda: nc.request(echo, b'{"v":1}', timeout=5), HALF)
                same += await time_many(lambda: nc.request(here, b'{"v":1}', timeout=5), HALF)
            listed = await kv.list_settings("timer:")
            if len(listed) != BURST:
                raise RuntimeError(f"{backend}: {len(listed)} of {BURST} acknowledged sets found")
    finally:
        await nc.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    durability = "WAL, synchronous=FULL" if backend == "sqlite" else "synchronous_commit=on"
    return [
        Measurement(
            f"storage.{backend}.set_acked",
            "ops/s",
            value=acked,
            n=BURST,
            baseline=BASELINE_THROUGHPUT,
            note=f"sets acknowledged after commit ({durability}), {IN_FLIGHT} in flight",
        ),
        latency(f"storage.{backend}.set", sets, BASELINE_REQUEST_REPLY, note="one at a time, after commit"),
        latency(
            f"storage.{backend}.get",
            gets,
            f"nats.request_reply_alongside.{backend}",
            note=(
                f"one at a time; {percentile(gets, 50) / percentile(bare, 50):.2f}x the p50 of a bare "
                f"responder in its own process measured alongside ({percentile(bare, 50):.3f} ms)"
            ),
        ),
        latency(
            f"nats.request_reply_process.{backend}",
            bare,
            BASELINE_REQUEST_REPLY,
            note="bare NATS request/reply to a responder in its own process, alternating with the gets",
        ),
        latency(
            f"nats.request_reply_alongside.{backend}",
            same,
            BASELINE_REQUEST_REPLY,
            note="bare NATS request/reply as nats.request_reply (responder in the bench's process), "
            "alternating with the gets: the get's bound in the scorecard (PERF-18)",
        ),
    ]


async def run(env: BenchEnv) -> list[Measurement]:
    results = [await bare_throughput(env)]
    results += await run_backend(env, "sqlite", None)
    name = f"huxley_bench_{secrets.token_hex(4)}"
    try:
        admin = await asyncpg.connect(database="postgres", timeout=5, **PG)  # type: ignore[arg-type]
    except (OSError, asyncpg.PostgresError) as exc:
        raise RuntimeError(f"PostgreSQL not reachable at {PG['host']}:{PG['port']}: {exc}") from exc
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = f"postgresql+asyncpg://{PG['user']}@{PG['host']}:{PG['port']}/{name}"
        results += await run_backend(env, "postgresql", url)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return results
