"""What every benchmark module uses.

A module `bench/bench_<name>.py` defines `async def run(env: BenchEnv) ->
list[Measurement]`. The harness starts one real nats-server for the run,
measures the shared baseline (a bare NATS request/reply) first, runs the
modules, and writes `bench/results/latest.json` and `latest.md` with every
figure next to its baseline as a ratio.

Authentication is on, as everywhere: the run's nats-server trusts only the
credentials of the run's `AuthStore`; a service a bench starts connects as
its own identity (`env.auth(site).fields(role)` / `.env(role)`), the bench's
own clients and the processes it spawns as the harness of their site
(`env.connect(site)`, `peer_env`), and the `huxley up` benches as that
home's observer (`huxley_up`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nats
import nats.errors
from nats.aio.client import Client

from huxley_cli.auth import AuthStore
from huxley_cli.identities import CREDS_ENV, INBOX_ENV, SiteAuth
from huxley_cli.natsserver import NatsServer, free_port
from huxley_wire.codec import decode, encode
from huxley_wire.errors import WireError
from huxley_wire.messages.common import Health, HealthRequest
from huxley_wire.permissions import Role, inbox_prefix
from huxley_wire.subjects import SERVICES, Subjects

BASELINE_REQUEST_REPLY = "nats.request_reply"
REPO = Path(__file__).resolve().parents[1]
PERSONAS = REPO / "personas"


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
    auth_store: AuthStore

    def site(self) -> str:
        return f"b{secrets.token_hex(4)}"

    def auth(self, site: str) -> SiteAuth:
        """Identities at `site`, minted on demand (services: `.fields(role)`
        for settings, `.env(role)` for a process)."""
        return SiteAuth(site, self.auth_store, PERSONAS, label="bench")

    async def connect(self, site: str, **connect_options: Any) -> Client:
        """The bench's own client at `site`: the harness identity."""
        return await nats.connect(self.nats_url, **connect_options, **self.auth(site).options(Role.HARNESS))


@contextlib.contextmanager
def bench_server(workdir: Path) -> Iterator[BenchEnv]:
    """The run's nats-server, authentication on, and the env benches get."""
    store = AuthStore.of(workdir / "bench-auth")  # keys and creds under <dir>/auth
    store.init(int(time.time()))
    server = NatsServer(
        store_dir=workdir / "nats", log_file=workdir / "nats.log", config_file=store.config_path
    ).start()
    try:
        yield BenchEnv(nats_url=server.url, workdir=workdir, auth_store=store)
    finally:
        server.stop()


def peer_env(env: BenchEnv, site: str) -> dict[str, str]:
    """The environment of a process a bench spawns to play a peer: the
    harness's creds at `site` (read back with `peer_options`)."""
    return {**os.environ, "HUXLEY_SITE": site, **env.auth(site).env(Role.HARNESS)}


@contextlib.asynccontextmanager
async def echo_peer(env: BenchEnv, site: str, name: str) -> AsyncIterator[str]:
    """A bare responder in its own process (bench.echo_peer) on
    `<site prefix>.echo.<name>` (under the site: the harness may use it),
    answering once this yields its subject."""
    subject = f"{Subjects(site).prefix}.echo.{name}"
    peer = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.echo_peer", env.nats_url, subject,
        stdout=asyncio.subprocess.PIPE, cwd=REPO, env=peer_env(env, site),
    )  # fmt: skip
    try:
        assert peer.stdout is not None
        if (await asyncio.wait_for(peer.stdout.readline(), 30)).strip() != b"ready":
            raise RuntimeError("the echo peer did not start")
        yield subject
    finally:
        peer.kill()
        await peer.wait()


@contextlib.asynccontextmanager
async def echo_here(env: BenchEnv, site: str, name: str) -> AsyncIterator[str]:
    """A bare responder in the bench's own process, on a connection of its own
    (as the shared `nats.request_reply`'s), on `<site prefix>.echo.<name>`: its
    baseline taken again beside a figure, so a busy spell of the machine at
    the start of the run does not set the figure's ratio (PERF-18)."""
    subject = f"{Subjects(site).prefix}.echo.{name}"
    responder = await env.connect(site)

    async def echo(msg: Any) -> None:
        await msg.respond(msg.data)

    try:
        await responder.subscribe(subject, cb=echo)
        await responder.flush()
        await responder.flush()
        yield subject
    finally:
        await responder.close()


def peer_options() -> dict[str, Any]:
    """In a spawned peer: nats-py connect options from `peer_env`."""
    return {"user_credentials": os.environ[CREDS_ENV], "inbox_prefix": os.environ[INBOX_ENV]}


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def in_rounds[T](items: list[T], rounds: int) -> Iterator[T]:
    """`items` once per round, the order turned by one each round: measured
    so, a slow spell of a shared machine falls on every item alike."""
    for round_ in range(rounds):
        turn = round_ % len(items)
        yield from items[turn:] + items[:turn]


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
    creds = AuthStore.of(data_dir).creds_path(site, "observer")
    return {"user_credentials": str(creds), "inbox_prefix": inbox_prefix("observer", site)}


@dataclass
class UpStack:
    """A running `huxley up` whose services all answered health ok."""

    proc: subprocess.Popen[bytes]
    nc: Client  # the observer's connection to its bus
    healthy_at: dict[str, float]  # per service, seconds after the command started

    @property
    def all_healthy_s(self) -> float:
        return max(self.healthy_at.values())


async def healthy(nc: Client, subjects: Subjects, service: str) -> bool:
    try:
        reply = await nc.request(subjects.health(service), encode(HealthRequest()), timeout=0.5)
        return decode(reply.data, Health).status == "ok"
    except (nats.errors.NoRespondersError, nats.errors.TimeoutError, TimeoutError, WireError):
        return False


async def _quiet(_: Exception) -> None:
    """nats-py reports every refused connect while nats-server starts: expected here."""


@contextlib.asynccontextmanager
async def huxley_up(
    data: Path, site: str, *, poll_s: float = 0.1, limit_s: float = 90.0
) -> AsyncIterator[UpStack]:
    """Run the real `huxley up` (its own nats-server, the offline simulator,
    the five services) in `data`, connect as its observer and ask every
    service for health every `poll_s` until all answer ok; stopped on exit."""
    port = free_port()
    # As a user's shell has it: bytecode is written at the first start and read at the
    # second (a shell with PYTHONDONTWRITEBYTECODE compiles every module at every start).
    dropped = ("OPENAI_API_KEY", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUXLEY_") and k not in dropped}
    env |= {"HUXLEY_SITE": site, "HUXLEY_PERSONAS_DIR": str(PERSONAS), "HUXLEY_WEB_PORT": "0"}
    huxley = Path(sys.executable).parent / "huxley"
    log = (data.parent / f"{data.name}-up.log").open("ab")
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(huxley), "up", "--data-dir", str(data), "--nats-port", str(port)],
        env=env,
        cwd=data.parent,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    nc: Client | None = None
    try:
        while nc is None:
            if time.monotonic() - started > limit_s or proc.poll() is not None:
                raise RuntimeError("huxley up: no nats-server")
            with contextlib.suppress(Exception):
                nc = await nats.connect(
                    f"nats://127.0.0.1:{port}",
                    allow_reconnect=False,
                    connect_timeout=0.2,
                    # Else nats-py waits its 2 s reconnect pause inside connect after a
                    # refused first try, and no service could be seen healthy before 2 s.
                    reconnect_time_wait=poll_s,
                    error_cb=_quiet,
                    max_reconnect_attempts=0,
                    **observer_options(data, site),
                )
            if nc is None:
                await asyncio.sleep(poll_s)
        subjects = Subjects(site)
        ready: dict[str, float] = {}
        while len(ready) < len(SERVICES):
            if time.monotonic() - started > limit_s or proc.poll() is not None:
                raise RuntimeError(f"huxley up: only {sorted(ready)} healthy after {limit_s:g} s")
            pending = [s for s in SERVICES if s not in ready]
            results = await asyncio.gather(*(healthy(nc, subjects, s) for s in pending))
            now = time.monotonic() - started
            ready |= {s: now for s, ok in zip(pending, results, strict=True) if ok}
            await asyncio.sleep(poll_s)
        yield UpStack(proc, nc, ready)
    finally:
        if nc is not None:
            await nc.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
