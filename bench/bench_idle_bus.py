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
import time
from collections import Counter
from pathlib import Path

from nats.aio.msg import Msg

from bench.harness import BenchEnv, Measurement, huxley_up
from huxley_wire.subjects import Subjects

WINDOW_S = float(os.environ.get("HUXLEY_BENCH_IDLE_S", "60"))
SETTLE_S = 5.0  # after all are healthy: manifests, first snapshots, model session
LIMIT_S = 90.0
TARGET_PER_S = 2.0  # issue 15: the idle bus carries at most 2 messages/s

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


async def measure(data: Path, site: str, window_s: float = WINDOW_S) -> tuple[Counter[str], float]:
    async with huxley_up(data, site, limit_s=LIMIT_S) as up:
        nc = up.nc
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
