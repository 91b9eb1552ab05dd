"""Issue 15's "done when" lines, checked against the results of one run.

Pure: `score` takes the run's measurements by name and returns one `Line`
per claim, with what was measured, the bound worked out from the same run's
baseline, and whether it held (None when a figure is missing: a module
failed or was not selected). `make bench` appends the lines to latest.md,
so the verdict is the code's, not a reading of the table by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bench.harness import Measurement

PATHS = ("skill_stream", "mic_append", "model_audio")
PATH_ALLOWANCE_MS = 0.5


@dataclass(frozen=True, slots=True)
class Line:
    claim: str
    figure: str
    bound: str
    met: bool | None


# What one check found: (this run's figure, the bound, whether it held).
type Found = tuple[str, str, bool]


def _n(x: float) -> str:
    return f"{x:.3f}" if abs(x) < 100 else f"{x:.0f}"


class _Missing(Exception):
    pass


class _Run:
    def __init__(self, results: Mapping[str, Measurement]) -> None:
        self.results = results

    def require(self, name: str) -> None:
        if name not in self.results:
            raise _Missing(name)

    def get(self, name: str, field: str) -> float:
        m = self.results.get(name)
        value = None if m is None else getattr(m, field)
        if value is None:
            raise _Missing(name)
        return float(value)


def _paths(run: _Run, mode: str) -> Found:
    base = run.get(f"paths.nats.{mode}", "p99")
    bound = base + PATH_ALLOWANCE_MS
    mine = {p: run.get(f"paths.{p}.{mode}", "p99") for p in PATHS}
    figure = ", ".join(f"{p.replace('_', ' ')} {_n(v)}" for p, v in mine.items())
    return (f"p99 {figure} ms", f"<= {_n(bound)} (bare NATS {_n(base)} + 0.5)", max(mine.values()) <= bound)


def _nats_vs_mqtt(run: _Run) -> Found:
    pairs = {mode: (run.get(f"transport.nats.{mode}", "p99"), run.get(f"transport.mqtt.{mode}", "p99"))
             for mode in ("paced", "burst_last")}  # fmt: skip
    figure = "; ".join(f"{mode} {_n(a)} vs {_n(b)}" for mode, (a, b) in pairs.items())
    return (f"p99 {figure} ms", "NATS <= MQTT", all(a <= b for a, b in pairs.values()))


def _reported(run: _Run, *names: str) -> Found:
    for name in names:
        run.require(name)
    return (", ".join(names), "present", True)


def _ratio(
    run: _Run, name: str, field: str, bases: tuple[str, ...], limit: float, *, at_least: bool = False
) -> Found:
    """`name` against the first of `bases` the run measured: a baseline taken
    beside the figure where there is one (PERF-18), else the shared one."""
    base = next((b for b in bases if b in run.results), bases[-1])
    mine, theirs = run.get(name, field), run.get(base, field)
    ratio = mine / theirs
    met = ratio >= limit if at_least else ratio <= limit
    figure = f"{_n(mine)} = {ratio:.3f}x {base} ({_n(theirs)})"
    return (figure, f"{'>=' if at_least else '<='} {limit:g}x", met)


def _at_most(run: _Run, name: str, field: str, limit: float, unit: str) -> Found:
    value = run.get(name, field)
    return (f"{_n(value)} {unit}", f"<= {limit:g} {unit}", value <= limit)


def _streams(run: _Run) -> Found:
    """The most streams of any level with < 1% late blocks (bench_streams'
    verdict), each level from 500 up shown beside it."""
    most = run.get("audio.streams_max_concurrent", "value")
    levels = sorted(
        (int(name.split("_")[1]), m.value)
        for name, m in run.results.items()
        if name.startswith("audio.streams_") and name.endswith("_bad_blocks") and m.value is not None
    )
    shown = ", ".join(f"{n}: {late:.2f}%" for n, late in levels if n >= 500)
    return (f"{most:.0f} streams ({shown} late blocks)", ">= 500 with < 1%", most >= 500)


CLAIMS: list[tuple[str, Callable[[_Run], Found]]] = [
    ("our paths, paced: p99 <= bare NATS p99 + 0.5 ms", lambda r: _paths(r, "paced")),
    ("our paths, last of a burst: p99 <= bare NATS p99 + 0.5 ms", lambda r: _paths(r, "burst_last")),
    ("bare NATS p99 <= MQTT p99, paced and last of a burst", _nats_vs_mqtt),
    (
        "Wyoming reported beside them",
        lambda r: _reported(r, "transport.wyoming.paced", "transport.wyoming.burst_last"),
    ),
    (
        "SQLite acknowledged sets >= 0.25x bare NATS request throughput",
        lambda r: _ratio(
            r, "storage.sqlite.set_acked", "value", ("nats.request_reply_throughput",), 0.25, at_least=True
        ),
    ),
    (
        "SQLite get p50 <= 1.5x bare request/reply",
        lambda r: _ratio(
            r, "storage.sqlite.get", "p50", ("nats.request_reply_alongside.sqlite", "nats.request_reply"), 1.5
        ),
    ),
    (
        "PostgreSQL reported beside",
        lambda r: _reported(r, "storage.postgresql.set_acked", "storage.postgresql.get"),
    ),
    (
        "PTT -> silent p99 <= 10 ms",
        lambda r: _at_most(r, "audio.ptt_to_silent_mixer_output", "p99", 10, "ms"),
    ),
    (
        "idle inject -> conversation item p50 <= 6x bare request/reply, taken idle too (PERF-12)",
        lambda r: _ratio(
            r, "bridge.procs.idle_inject_to_conversation_item", "p50", ("bridge.procs.idle_request_reply",), 6
        ),
    ),
    (
        "the same against the back-to-back bare request/reply",
        lambda r: _ratio(
            r,
            "bridge.procs.idle_inject_to_conversation_item",
            "p50",
            ("bridge.procs.request_reply", "nats.request_reply"),
            6,
        ),
    ),
    (
        "make up to all healthy <= 3 s (second start)",
        lambda r: _at_most(r, "startup.up_to_all_healthy", "value", 3, "s"),
    ),
    ("memory of the stack <= 300 MiB (PSS)", lambda r: _at_most(r, "startup.stack_pss", "value", 300, "MiB")),
    ("idle bus <= 2 messages/s", lambda r: _at_most(r, "bus.idle_messages_per_s", "value", 2, "msg/s")),
    (">= 500 concurrent output streams with < 1% late blocks", _streams),
]


def score(results: Mapping[str, Measurement]) -> list[Line]:
    run = _Run(results)
    lines = []
    for claim, check in CLAIMS:
        try:
            figure, bound, met = check(run)
            lines.append(Line(claim, figure, bound, met))
        except _Missing as missing:
            lines.append(Line(claim, f"{missing} not measured", "-", None))
    return lines


def to_markdown(lines: list[Line]) -> list[str]:
    met = sum(line.met is True for line in lines)
    verdict = {True: "yes", False: "**no**", None: "not measured"}
    return [
        "## Issue 15's lines in this run",
        "",
        f"{met} of {len(lines)} met (bench/scorecard.py).",
        "",
        "| claim | this run | bound | met |",
        "|---|---|---|---|",
        *(f"| {line.claim} | {line.figure} | {line.bound} | {verdict[line.met]} |" for line in lines),
    ]
