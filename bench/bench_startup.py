"""`huxley up`: time to all five services healthy, and resident memory.

Runs the real command (nats-server, the offline Realtime simulator and the
five services, supervised) in a fresh data directory, twice: the first start
creates the schema and the JetStream stores (and writes the bytecode of
what was not imported before); the second is the figure (`make up` on a
machine that has run it before). Health is asked of every
service directly every 20 ms (a fast poller, so the figure is the stack's,
not the poller's). Memory: VmRSS of every process of the tree (nats-server
included), summed, once all are healthy; PSS beside it (shared pages split:
the stack's own memory when its services share pages forked from one
parent, so the figure the target is read against; docs/performance.md).
CPU: user+system seconds the whole tree had used when the last service
answered healthy, which a loaded machine does not inflate as it does the time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nats

from bench.harness import BenchEnv, Measurement, observer_options
from huxley_cli.natsserver import free_port
from huxley_wire.codec import decode, encode
from huxley_wire.errors import WireError
from huxley_wire.messages.common import Health, HealthRequest
from huxley_wire.subjects import SERVICES, Subjects

POLL_S = 0.02
LIMIT_S = 90.0
SETTLE_S = 2.0  # after all are healthy, before memory is read (lazy work done at start)
REPO = Path(__file__).resolve().parents[1]


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _kib(pid: int, file: str, key: str) -> int:
    with contextlib.suppress(OSError):
        for line in (Path(f"/proc/{pid}") / file).read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    return 0


def _name(pid: int) -> str:
    with contextlib.suppress(OSError):
        argv = (Path(f"/proc/{pid}") / "cmdline").read_bytes().split(b"\0")
        if b"-m" in argv:
            return argv[argv.index(b"-m") + 1].decode()
        return Path(argv[0].decode()).name if len(argv) < 3 else Path(argv[1].decode()).name
    return "?"


async def _healthy(nc: nats.NATS, subjects: Subjects, service: str) -> bool:
    try:
        reply = await nc.request(subjects.health(service), encode(HealthRequest()), timeout=0.5)
        return decode(reply.data, Health).status == "ok"
    except (nats.errors.NoRespondersError, nats.errors.TimeoutError, TimeoutError, WireError):
        return False


async def _quiet(_: Exception) -> None:
    """nats-py reports every refused connect while nats-server starts: expected here."""


def _cpu_s(pid: int) -> float:
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = (Path(f"/proc/{pid}") / "stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    return 0.0


async def _start(
    data: Path, site: str
) -> tuple[float, dict[str, float], dict[str, int], dict[str, int], dict[str, float]]:
    port = free_port()
    # As a user's shell has it: bytecode is written at the first start and read at the
    # second (a shell with PYTHONDONTWRITEBYTECODE compiles every module at every start).
    dropped = ("OPENAI_API_KEY", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUXLEY_") and k not in dropped}
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
    try:
        nc = None
        while nc is None:
            if time.monotonic() - started > LIMIT_S or proc.poll() is not None:
                raise RuntimeError("huxley up: no nats-server")
            with contextlib.suppress(Exception):
                nc = await nats.connect(
                    f"nats://127.0.0.1:{port}",
                    allow_reconnect=False,
                    connect_timeout=0.2,
                    # Else nats-py waits its 2 s reconnect pause inside connect after a
                    # refused first try, and no service could be seen healthy before 2 s.
                    reconnect_time_wait=POLL_S,
                    error_cb=_quiet,
                    max_reconnect_attempts=0,
                    **observer_options(data, site),
                )
            if nc is None:
                await asyncio.sleep(POLL_S)
        subjects = Subjects(site)
        ready: dict[str, float] = {}
        try:
            while len(ready) < len(SERVICES):
                if time.monotonic() - started > LIMIT_S or proc.poll() is not None:
                    raise RuntimeError(f"huxley up: only {sorted(ready)} healthy after {LIMIT_S:g} s")
                pending = [s for s in SERVICES if s not in ready]
                results = await asyncio.gather(*(_healthy(nc, subjects, s) for s in pending))
                now = time.monotonic() - started
                ready |= {s: now for s, ok in zip(pending, results, strict=True) if ok}
                await asyncio.sleep(POLL_S)
        finally:
            await nc.close()
        took = max(ready.values())
        cpu = {f"{_name(p)}[{p}]": _cpu_s(p) for p in _tree(proc.pid)}
        await asyncio.sleep(SETTLE_S)
        pids = _tree(proc.pid)
        rss = {f"{_name(p)}[{p}]": _kib(p, "status", "VmRSS:") for p in pids}
        pss = {f"{_name(p)}[{p}]": _kib(p, "smaps_rollup", "Pss:") for p in pids}
        return took, ready, rss, pss, cpu
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


async def run(env: BenchEnv) -> list[Measurement]:
    data = env.workdir / "up-data"
    site = env.site()
    first, _, _, _, _ = await _start(data, site)
    second, per_service, rss, pss, cpu = await _start(data, site)
    mib = sum(rss.values()) / 1024
    pss_total = sum(pss.values())
    return [
        Measurement(
            name="startup.up_to_all_healthy_first",
            unit="s",
            value=first,
            n=1,
            note="`huxley up` in an empty data dir -> all five services answer health ok",
        ),
        Measurement(
            name="startup.up_to_all_healthy",
            unit="s",
            value=second,
            n=1,
            baseline="startup.up_to_all_healthy_first",
            note=(
                "the same, second start (schema and streams exist): what `make up` costs day to day; "
                f"{sum(cpu.values()):.2f} CPU-s used by then over all its processes"
            ),
            extra={
                "healthy_at_s": {
                    k: round(v, 3) for k, v in sorted(per_service.items(), key=lambda kv: kv[1])
                },
                "cpu_s": round(sum(cpu.values()), 2),
                "cpu_s_per_process": {k: round(v, 2) for k, v in sorted(cpu.items(), key=lambda kv: -kv[1])},
            },
        ),
        Measurement(
            name="startup.stack_rss",
            unit="MiB",
            value=mib,
            n=len(rss),
            note=(
                f"VmRSS summed over the {len(rss)} processes of `huxley up` (nats-server, simulator, "
                f"services, supervisor), {SETTLE_S:g} s after all are healthy; PSS {pss_total / 1024:.0f} MiB"
            ),
            extra={
                "rss_mib": {k: round(v / 1024, 1) for k, v in sorted(rss.items(), key=lambda kv: -kv[1])},
                "pss_mib": {k: round(v / 1024, 1) for k, v in sorted(pss.items(), key=lambda kv: -kv[1])},
            },
        ),
        Measurement(
            name="startup.stack_pss",
            unit="MiB",
            value=pss_total / 1024,
            n=len(pss),
            note="PSS (each shared page divided among its sharers) summed over the same processes: "
            "the stack's memory, the figure the 300 MiB target is read against",
        ),
    ]
