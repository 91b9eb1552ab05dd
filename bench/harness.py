"""What every benchmark module uses.

A module `bench/bench_<name>.py` defines `async def run(env: BenchEnv) ->
list[Measurement]`. The harness starts one real nats-server for the run,
measures the shared baseline (a bare NATS request/reply) first, runs the
modules, and writes `bench/results/latest.json` and `latest.md` with every
figure next to its baseline as a ratio.
"""

from __future__ import annotations

import secrets
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BASELINE_REQUEST_REPLY = "nats.request_reply"


@dataclass
class Measurement:
    name: str
    unit: str  # "ms" for latencies, "ops/s", "%"...
    p50: float | None = None
    p99: float | None = None
    value: float | None = None  # for throughput-like figures
    max: float | None = None  # the slowest sample, for latencies
    n: int = 0
    baseline: str | None = None  # the name of a measurement taken in the same run
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BenchEnv:
    nats_url: str
    workdir: Path

    def site(self) -> str:
        return f"b{secrets.token_hex(4)}"


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def latency(name: str, samples_ms: list[float], baseline: str | None = None, note: str = "") -> Measurement:
    return Measurement(
        name=name,
        unit="ms",
        p50=percentile(samples_ms, 50),
        p99=percentile(samples_ms, 99),
        value=statistics.fmean(samples_ms) if samples_ms else None,
        max=max(samples_ms) if samples_ms else None,
        n=len(samples_ms),
        baseline=baseline,
        note=note,
    )


async def time_many(op: Callable[[], Awaitable[Any]], n: int, warmup: int = 20) -> list[float]:
    """Run `op` n times (after a warm-up) and return each duration in ms."""
    for _ in range(warmup):
        await op()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await op()
        samples.append((time.perf_counter() - started) * 1e3)
    return samples


def observer_options(data_dir: Path, site: str) -> dict[str, str]:
    """nats-py connect options of the read-only observer of a `huxley up`
    started with `data_dir` (its bus admits only credentials)."""
    from huxley_cli.auth import AuthStore
    from huxley_wire.permissions import inbox_prefix

    creds = AuthStore.of(data_dir).creds_path(site, "observer")
    return {"user_credentials": str(creds), "inbox_prefix": inbox_prefix("observer", site)}
