"""Run the benchmarks and write bench/results/latest.{json,md}.

    python -m bench [group ...]

HUXLEY_BENCH_RESULTS=<dir> writes the two files there instead (a partial
run, e.g. one group, then leaves the recorded results alone).

    python -m bench --render [results.json]

writes the markdown again from a run's JSON (latest.json by default) beside
it, e.g. after the scorecard's lines changed."""

from __future__ import annotations

import asyncio
import importlib
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from bench import scorecard
from bench.harness import Measurement, bench_server

HERE = Path(__file__).resolve().parent
RESULTS = Path(os.environ.get("HUXLEY_BENCH_RESULTS") or HERE / "results")


def modules(selected: list[str]) -> list[str]:
    names = sorted(p.stem for p in HERE.glob("bench_*.py"))
    names.remove("bench_nats_baseline")
    if selected:
        names = [n for n in names if n.removeprefix("bench_") in selected]
    return ["bench_nats_baseline", *names]


def _fmt(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.3f}" if abs(x) < 100 else f"{x:.0f}"


def to_markdown(results: list[Measurement], meta: dict[str, object]) -> str:
    by_name = {m.name: m for m in results}
    lines = [
        "# Benchmark results",
        "",
        f"Run {meta['when']} on {meta['machine']} (Python {meta['python']}).",
        "Ratios compare each figure with a baseline measured in the same run.",
        "",
        "| benchmark | unit | p50 | p99 | max | value | n | baseline | ratio (p50 or value) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m in results:
        ratio = "-"
        base = by_name.get(m.baseline or "")
        if base is not None:
            mine = m.p50 if m.p50 is not None else m.value
            theirs = base.p50 if base.p50 is not None else base.value
            if mine and theirs:
                ratio = f"{mine / theirs:.2f}x"
        lines.append(
            f"| {m.name} | {m.unit} | {_fmt(m.p50)} | {_fmt(m.p99)} | {_fmt(m.max)} | {_fmt(m.value)} "
            f"| {m.n} | {m.baseline or '-'} | {ratio} |"
        )
    notes = [f"- **{m.name}**: {m.note}" for m in results if m.note]
    if notes:
        lines += ["", *notes]
    lines += ["", *scorecard.to_markdown(scorecard.score(by_name))]
    return "\n".join(lines) + "\n"


def write_results(results: list[Measurement], meta: dict[str, object]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(
        json.dumps({"meta": meta, "results": [m.to_dict() for m in results]}, indent=2) + "\n"
    )
    (RESULTS / "latest.md").write_text(to_markdown(results, meta))
    print(f"wrote {RESULTS / 'latest.json'} and latest.md", flush=True)


async def main(selected: list[str]) -> int:
    results: list[Measurement] = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="huxley-bench-") as tmp, bench_server(Path(tmp)) as env:
        for name in modules(selected):
            print(f"== {name}", flush=True)
            try:
                module = importlib.import_module(f"bench.{name}")
                got = await module.run(env)
            except Exception as exc:  # one broken benchmark must not hide the others
                failures.append(f"{name}: {type(exc).__name__}: {exc}")
                print(f"   FAILED: {exc!r}", flush=True)
                continue
            for m in got:
                print(
                    f"   {m.name}: p50={_fmt(m.p50)} p99={_fmt(m.p99)} max={_fmt(m.max)} "
                    f"value={_fmt(m.value)} {m.unit}",
                    flush=True,
                )
            results.extend(got)
    meta = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": f"{platform.machine()}, {platform.node()}",
        "python": platform.python_version(),
        "failures": failures,
    }
    write_results(results, meta)
    return 1 if failures else 0


def render(path: Path) -> None:
    saved = json.loads(path.read_text())
    results = [Measurement(**m) for m in saved["results"]]
    path.with_suffix(".md").write_text(to_markdown(results, saved["meta"]))
    print(f"wrote {path.with_suffix('.md')}", flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--render"]:
        render(Path(sys.argv[2]) if len(sys.argv) > 2 else RESULTS / "latest.json")
        sys.exit(0)
    sys.exit(asyncio.run(main(sys.argv[1:])))
