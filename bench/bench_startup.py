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
import sys
from pathlib import Path

from bench.harness import BenchEnv, Measurement, huxley_up
from bench.procfs import cpu_s_or_zero, kib

POLL_S = 0.02
LIMIT_S = 90.0
SETTLE_S = 2.0  # after all are healthy, before memory is read (lazy work done at start)
# What every one of our Python processes imports at the least.
FLOOR_IMPORTS = "import nats.aio.client, pydantic, structlog"


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


def _name(pid: int) -> str:
    with contextlib.suppress(OSError):
        argv = (Path(f"/proc/{pid}") / "cmdline").read_bytes().split(b"\0")
        if b"-m" in argv:
            return argv[argv.index(b"-m") + 1].decode()
        program = Path(argv[0].decode()).name
        # A script run by Python (`huxley`) is named by the script.
        return Path(argv[1].decode()).name if program.startswith("python") and len(argv) > 1 else program
    return "?"


async def _start(
    data: Path, site: str
) -> tuple[float, dict[str, float], dict[str, int], dict[str, int], dict[str, float]]:
    async with huxley_up(data, site, poll_s=POLL_S, limit_s=LIMIT_S) as up:
        cpu = {f"{_name(p)}[{p}]": cpu_s_or_zero(p) for p in _tree(up.proc.pid)}
        await asyncio.sleep(SETTLE_S)
        pids = _tree(up.proc.pid)
        rss = {f"{_name(p)}[{p}]": kib(f"/proc/{p}/status", "VmRSS:") for p in pids}
        pss = {f"{_name(p)}[{p}]": kib(f"/proc/{p}/smaps_rollup", "Pss:") for p in pids}
        return up.all_healthy_s, up.healthy_at, rss, pss, cpu


async def _python_floor_kib() -> int:
    """VmRSS of a Python process that imports only FLOOR_IMPORTS."""
    script = f"{FLOOR_IMPORTS}; print(open('/proc/self/status').read())"
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    line = next(x for x in out.decode().splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1])


async def run(env: BenchEnv) -> list[Measurement]:
    data = env.workdir / "up-data"
    site = env.site()
    first, _, _, _, _ = await _start(data, site)
    second, per_service, rss, pss, cpu = await _start(data, site)
    mib = sum(rss.values()) / 1024
    pss_total = sum(pss.values())
    floor = await _python_floor_kib() / 1024
    pythons = sum(1 for name in rss if not name.startswith("nats-server["))
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
        Measurement(
            name="startup.python_floor_rss",
            unit="MiB",
            value=floor,
            n=1,
            note=(
                f"VmRSS of one Python process that only runs `{FLOOR_IMPORTS}`, what each service loads "
                f"at the least: the stack's {pythons} Python processes x this = {pythons * floor:.0f} MiB "
                "of summed RSS before any of them does anything, why summed RSS cannot be the memory figure"
            ),
        ),
    ]
