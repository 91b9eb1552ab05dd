"""The idle bus: what someone watching the bus sees while nothing happens.

Runs `huxley up` (nats-server, the offline Realtime simulator and the five
services, supervised, the default persona) in a fresh data directory, waits
until every service answers health ok and the start-up chatter has passed,
then counts every message on the site's subjects (`huxley.<site>.>`) for a
window (60 s; set HUXLEY_BENCH_IDLE_S to change it) and reports messages/s,
total and by subject pattern; a focus.rpc request under its `op`.

The bench watches as the read-only observer (`huxley up` admits only
credentials), which cannot read other parts' inboxes: each request seen is
counted with the one reply it gets (`reply: <pattern>`). The bench's own
health polls end before the window.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg

from bench.harness import BenchEnv, Measurement, observer_options
from huxley_cli.natsserver import free_port
from huxley_wire.codec import decode, encode
from huxley_wire.errors import WireError
from huxley_wire.messages.common import Health, HealthRequest
from huxley_wire.subjects import SERVICES, Subjects

WINDOW_S = float(os.environ.get("HUXLEY_BENCH_IDLE_S", "60"))
SETTLE_S = 5.0  # after all are healthy: manifests, first snapshots, model session
LIMIT_S = 90.0
TARGET_PER_S = 2.0  # issue 15: the idle bus carries at most 2 messages/s
REPO = Path(__file__).resolve().parents[1]

_INBOX = re.compile(r"^_INBOX\.[^.]+(\.[^.]+)?$")
_IDS = re.compile(r"\.(skill-host-[0-9a-f]+|[0-9a-f]{8,})(?=\.|$)")


def pattern(subject: str, site: str) -> str:
    """A subject with its site, inbox and instance tokens generalized."""
    if _INBOX.match(subject):
        return "_INBOX.*"
    out = subject.replace(f"huxley.{site}.", "huxley.<site>.", 1)
    return _IDS.sub(".*", out)


def _op(data: bytes) -> str | None:
    with contextlib.suppress(ValueError, UnicodeDecodeError, AttributeError):
        op = json.loads(data).get("op")
        return op if isinstance(op, str) else None
    return None


class Tally:
    """Messages per pattern; replies under the request they answer."""

    def __init__(self, site: str) -> None:
        self.site = site
        self.counts: Counter[str] = Counter()
        self.counting = False

    async def on_message(self, msg: Msg) -> None:
        name = pattern(msg.subject, self.site)
        if name.endswith(".rpc") and (op := _op(msg.data)):
            name = f"{name} {op}"
        if self.counting:
            self.counts[name] += 1
            # The observer may not read other parts' inboxes (authentication is
            # on): each request seen is counted with the one reply it gets.
            if msg.reply:
                self.counts[f"reply: {name}"] += 1


async def _healthy(nc: Client, subjects: Subjects, service: str) -> bool:
    try:
        reply = await nc.request(subjects.health(service), encode(HealthRequest()), timeout=0.5)
        return decode(reply.data, Health).status == "ok"
    except (nats.errors.NoRespondersError, nats.errors.TimeoutError, TimeoutError, WireError):
        return False


async def _quiet(_: Exception) -> None:
    """nats-py reports every refused connect while nats-server starts: expected here."""


@contextlib.asynccontextmanager
async def stack(data: Path, site: str) -> AsyncIterator[Client]:
    """`huxley up` with every service healthy; yields a connection to its bus."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUXLEY_") and k != "OPENAI_API_KEY"}
    env |= {"HUXLEY_SITE": site, "HUXLEY_PERSONAS_DIR": str(REPO / "personas"), "HUXLEY_WEB_PORT": "0"}
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
            if time.monotonic() - started > LIMIT_S or proc.poll() is not None:
                raise RuntimeError("huxley up: no nats-server")
            with contextlib.suppress(Exception):
                nc = await nats.connect(
                    f"nats://127.0.0.1:{port}",
                    connect_timeout=0.2,
                    error_cb=_quiet,
                    max_reconnect_attempts=0,
                    **observer_options(data, site),
                )
            if nc is None:
                await asyncio.sleep(0.05)
        subjects = Subjects(site)
        pending = set(SERVICES)
        while pending:
            if time.monotonic() - started > LIMIT_S or proc.poll() is not None:
                raise RuntimeError(f"huxley up: {sorted(pending)} not healthy after {LIMIT_S:g} s")
            results = await asyncio.gather(*(_healthy(nc, subjects, s) for s in sorted(pending)))
            pending -= {s for s, ok in zip(sorted(pending), results, strict=True) if ok}
            await asyncio.sleep(0.1)
        yield nc
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


async def measure(data: Path, site: str, window_s: float = WINDOW_S) -> tuple[Counter[str], float]:
    async with stack(data, site) as nc:
        tally = Tally(site)
        await nc.subscribe(Subjects(site).everything, cb=tally.on_message)
        await nc.flush()
        await asyncio.sleep(SETTLE_S)
        tally.counting = True
        started = time.monotonic()
        await asyncio.sleep(window_s)
        tally.counting = False
        return tally.counts, time.monotonic() - started


async def run(env: BenchEnv) -> list[Measurement]:
    counts, took = await measure(env.workdir / "idle-data", env.site())
    total = sum(counts.values())
    by_pattern = {k: round(v / took, 3) for k, v in counts.most_common()}
    return [
        Measurement(
            name="bus.idle_messages_per_s",
            unit="msg/s",
            value=total / took,
            n=total,
            note=(
                f"every message on the bus of an idle `huxley up` (default persona, replies included) "
                f"over {took:.0f} s, {SETTLE_S:g} s after all were healthy; target <= {TARGET_PER_S:g}"
            ),
            extra={"per_s_by_pattern": by_pattern},
        )
    ]


async def _main() -> None:
    """`python -m bench.bench_idle_bus`: this figure alone, printed by pattern."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="huxley-idle-") as tmp:
        counts, took = await measure(Path(tmp) / "data", f"b{os.getpid()}")
    total = sum(counts.values())
    print(f"{total / took:.2f} msg/s ({total} in {took:.1f} s)")
    for name, n in counts.most_common():
        print(f"  {n / took:7.3f}/s  {n:5d}  {name}")


if __name__ == "__main__":
    asyncio.run(_main())
