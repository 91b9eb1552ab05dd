"""`python -m bench.soak --minutes M` (`make soak`, issue 13 item 8): the
whole stack under steady load for a while, memory and latency sampled, and
their growth reported to bench/results/soak.{json,md}.

Load: the web client plays the audiobook and presses the talk button every
`--press-every-s` (a hello turn, then the book again); a control loop sets
and gets storage keys and calls a tool all the time. Every `--sample-s`:
RSS of each service's own process and of nats-server (from /proc) and the
round trip of 10 tool calls and 10 storage gets. Growth is the slope of a
least-squares line through the samples, per hour, and last minus first.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from bench.chaos.household import FAILURES
from bench.chaos.stack import PERSONA, SERVICES, ChaosStack
from bench.chaos.web_client import WebClient
from bench.procfs import kib
from huxley_runtime.rpc import request
from huxley_wire.messages.skills import ToolCall
from huxley_wire.messages.storage import KvGet, KvSet

RESULTS = Path(__file__).resolve().parent / "results"
PROBES = 10


def rss_kib(pid: int) -> int:
    """Resident memory of the service's own process (not the decoders it
    starts and ends, which would read as growth)."""
    return kib(f"/proc/{pid}/status", "VmRSS:")


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value), per hour."""
    if len(points) < 2:
        return None
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    if den == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den * 3600


class Load:
    def __init__(self, stack: ChaosStack, web: WebClient, press_every_s: float) -> None:
        self.stack = stack
        self.web = web
        self.press_every_s = press_every_s
        self.errors = 0
        self.ops = 0

    async def tool_rtt(self) -> float | None:
        call = ToolCall(call_id="soak", tool="get_current_time", args={})
        start = time.perf_counter()
        try:
            await request(self.stack.nc, self.stack.subjects.skill_tool("system"), call, timeout=5.0)
        except FAILURES:
            self.errors += 1
            return None
        return (time.perf_counter() - start) * 1000

    async def get_rtt(self) -> float | None:
        start = time.perf_counter()
        subject = self.stack.subjects.storage_kv(PERSONA, "soak")
        try:
            await request(self.stack.nc, subject, KvGet(key="k1"), timeout=5.0)
        except FAILURES:
            self.errors += 1
            return None
        return (time.perf_counter() - start) * 1000

    async def control(self, stop: asyncio.Event) -> None:
        subject = self.stack.subjects.storage_kv(PERSONA, "soak")
        n = 0
        while not stop.is_set():
            n += 1
            try:
                await request(self.stack.nc, subject, KvSet(key=f"k{n % 500}", value="x" * 200), timeout=5.0)
            except FAILURES:
                self.errors += 1
            await self.get_rtt()
            await self.tool_rtt()
            self.ops += 3
            await asyncio.sleep(0.2)

    async def talk(self, stop: asyncio.Event) -> None:
        await self.web.press("3")
        while True:
            try:
                await asyncio.wait_for(stop.wait(), self.press_every_s)
                return
            except TimeoutError:
                pass
            await self.web.press("0")
            await asyncio.sleep(4)
            await self.web.press("3")  # the book again, from where it was


async def sample(stack: ChaosStack, load: Load, started: float) -> dict[str, Any]:
    rss: dict[str, int] = {}
    for target in [*SERVICES, "nats-server"]:
        pid = stack.pid_of(target)
        if pid is not None:
            rss[target] = rss_kib(pid)
    tools = [t for t in [await load.tool_rtt() for _ in range(PROBES)] if t is not None]
    gets = [g for g in [await load.get_rtt() for _ in range(PROBES)] if g is not None]
    return {
        "t_s": round(time.monotonic() - started, 1),
        "rss_kib": rss,
        "tool_ms_p50": round(statistics.median(tools), 2) if tools else None,
        "tool_ms_max": round(max(tools), 2) if tools else None,
        "get_ms_p50": round(statistics.median(gets), 2) if gets else None,
        "get_ms_max": round(max(gets), 2) if gets else None,
        "web_audio_s": round(load.web.audio_s, 1),
    }


def summarize(samples: list[dict[str, Any]]) -> dict[str, Any]:
    memory = {}
    for target in [*SERVICES, "nats-server"]:
        points = [(s["t_s"], s["rss_kib"][target] / 1024) for s in samples if target in s["rss_kib"]]
        if points:
            memory[target] = {
                "first_mib": round(points[0][1], 1),
                "last_mib": round(points[-1][1], 1),
                "max_mib": round(max(p[1] for p in points), 1),
                "growth_mib": round(points[-1][1] - points[0][1], 1),
                "slope_mib_per_h": _round(slope_per_hour(points)),
            }
    latency = {}
    for key in ("tool_ms_p50", "get_ms_p50"):
        points = [(s["t_s"], s[key]) for s in samples if s[key] is not None]
        if points:
            latency[key] = {
                "first": points[0][1],
                "last": points[-1][1],
                "max": max(p[1] for p in points),
                "slope_ms_per_h": _round(slope_per_hour(points)),
            }
    return {"memory": memory, "latency": latency}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


async def run_soak(minutes: float, sample_s: float, press_every_s: float, root: Path) -> dict[str, Any]:
    samples: list[dict[str, Any]] = []
    async with ChaosStack(root, site="soak") as stack:
        await stack.wait_ready()
        web = WebClient(stack.ws_url)
        web.start()
        load = Load(stack, web, press_every_s)
        stop = asyncio.Event()
        started = time.monotonic()
        workers = asyncio.gather(load.control(stop), load.talk(stop))
        end = started + minutes * 60
        while True:
            samples.append(await sample(stack, load, started))
            print(json.dumps(samples[-1]), flush=True)
            if time.monotonic() + sample_s > end + 1:
                break
            await asyncio.sleep(max(0.0, min(sample_s, end - time.monotonic())))
        stop.set()
        await workers
        await web.stop()
        restarts = stack.restarts()
        result = {
            "minutes": minutes,
            "sample_s": sample_s,
            "press_every_s": press_every_s,
            "duration_s": round(time.monotonic() - started, 1),
            "ops": load.ops,
            "errors": load.errors,
            "presses": web.presses,
            "failed_presses": web.failed_presses,
            "web_audio_s": round(web.audio_s, 1),
            "restarts": restarts,
            "samples": samples,
        }
    return {**result, **summarize(samples)}


def markdown(report: dict[str, Any], note: str) -> str:
    lines = [
        f"# Soak run: {report['minutes']:g} minutes",
        "",
        *([note, ""] if note else []),
        f"Sampled every {report['sample_s']:g} s; a press every {report['press_every_s']:g} s; "
        f"{report['ops']} control operations ({report['errors']} failed), {report['presses']} presses "
        f"({report['failed_presses']} failed), {report['web_audio_s']:.0f} s of audio at the web client; "
        f"restarts: {report['restarts']}. Generated by `python -m bench.soak`; see docs/reliability.md.",
        "",
        "## Memory (RSS of each process)",
        "",
        "| process | first MiB | last MiB | max MiB | growth MiB | slope MiB/h |",
        "|---|---|---|---|---|---|",
    ]
    for target, m in report["memory"].items():
        lines.append(
            f"| {target} | {m['first_mib']} | {m['last_mib']} | {m['max_mib']} | {m['growth_mib']} "
            f"| {m['slope_mib_per_h']} |"
        )
    lines += ["", "## Latency (p50 of 10 round trips per sample)", ""]
    lines += ["| probe | first ms | last ms | max ms | slope ms/h |", "|---|---|---|---|---|"]
    for key, v in report["latency"].items():
        lines.append(f"| {key} | {v['first']} | {v['last']} | {v['max']} | {v['slope_ms_per_h']} |")
    lines.append("")
    return "\n".join(lines)


app = typer.Typer(add_completion=False)


@app.command()
def main(
    minutes: Annotated[float, typer.Option(help="How long to run")] = 60.0,
    sample_s: Annotated[float, typer.Option(help="Seconds between samples")] = 30.0,
    press_every_s: Annotated[float, typer.Option(help="Seconds between talk-button presses")] = 20.0,
    out: Annotated[Path, typer.Option(help="Where soak.json and soak.md go")] = RESULTS,
    note: Annotated[str, typer.Option(help="A line put at the top of the report")] = "",
) -> None:
    """Run the stack under steady load and report memory and latency growth."""
    with tempfile.TemporaryDirectory(prefix="huxley-soak-") as tmp:
        report = asyncio.run(run_soak(minutes, sample_s, press_every_s, Path(tmp)))
    report["note"] = note
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "soak.md").write_text(markdown(report, note))
    print((out / "soak.md").read_text())


if __name__ == "__main__":
    app()
