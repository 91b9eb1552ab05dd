"""The chaos run's verdict and its report (pure: facts in, figures out).

Classes counted:
- acknowledged writes lost: a `set` answered ok whose value storage does not
  return at the end;
- timers, reminders and inject storms said 0, 1 or 2+ times: how many
  responses the model was asked for whose text holds the item's token (the
  simulator's own log, so nothing is missed while the bus is down), with
  the assistant transcripts seen on the bus as a second witness;
- channels stuck: activities still held after quiescence that nothing
  should hold (see `stuck_activities`);
- book resumed: after the last fault a press asked for the book again and it
  played on from a saved position;
- recovery time per fault, and p50 / max per target.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Facts:
    seed: int
    faults: list[dict[str, Any]]  # Outcome.as_dict()
    writes: dict[str, str]  # acknowledged key -> value
    writes_tried: int
    stored: dict[str, str | None]  # key -> value read back at the end
    expected: list[dict[str, Any]]  # {kind, token, detail}
    model_texts: list[str]  # every response text the model was asked for
    bus_transcripts: list[tuple[str | None, str]]  # (turn_id, text) of assistant transcripts
    stuck: list[dict[str, Any]]
    book: dict[str, Any]
    refused: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = max(0, math.ceil(q * len(ordered)) - 1)
    return ordered[index]


def stuck_activities(snapshot: dict[str, Any], live_instances: set[str]) -> list[dict[str, Any]]:
    """What a quiet house should not hold: anything on DIALOG (no turn is
    running), anything on COMMS (the last press ended the call), anything of
    a holder that is not a live instance, an inject playing or queued."""
    stuck = []
    for channel, activities in snapshot.get("channels", {}).items():
        for act in activities:
            holder = act.get("holder", "")
            why = None
            if str(channel).lower() in ("dialog", "comms"):
                why = f"held on {channel} after quiescence"
            elif not any(instance in holder for instance in live_instances):
                why = f"holder {holder} is not a live instance"
            if why:
                stuck.append({"activity_id": act.get("activity_id"), "channel": channel,
                              "holder": holder, "why": why})  # fmt: skip
    if snapshot.get("current_inject"):
        stuck.append(
            {"inject": snapshot["current_inject"], "why": "an inject still current after quiescence"}
        )
    for queued in snapshot.get("queue", []):
        stuck.append({"inject": queued, "why": "an inject still queued after quiescence"})
    return stuck


def said_counts(facts: Facts) -> list[dict[str, Any]]:
    rows = []
    for item in facts.expected:
        token = item["token"]
        model = sum(token in text for text in facts.model_texts)
        turns = {turn for turn, text in facts.bus_transcripts if token in text}
        rows.append({**item, "model_said": model, "bus_turns": len(turns)})
    return rows


def _bucket(count: int) -> str:
    return "0" if count == 0 else "1" if count == 1 else "2+"


def verdict(facts: Facts) -> dict[str, Any]:
    lost = sorted(k for k, v in facts.writes.items() if facts.stored.get(k) != v)
    said = said_counts(facts)
    classes: dict[str, Counter[str]] = defaultdict(Counter)
    for row in said:
        classes[row["kind"]][_bucket(row["model_said"])] += 1
    recovery: dict[str, list[float]] = defaultdict(list)
    unrecovered: Counter[str] = Counter()
    for f in facts.faults:
        if f["recovered"]:
            recovery[f["target"]].append(f["recovery_s"])
        else:
            unrecovered[f["target"]] += 1
    per_target = {
        target: {
            "faults": len(values) + unrecovered[target],
            "p50_s": percentile(values, 0.5),
            "max_s": max(values, default=None),
            "not_recovered": unrecovered[target],
        }
        for target in sorted(set(recovery) | set(unrecovered))
        for values in [recovery.get(target, [])]
    }
    kinds = Counter(f["kind"] for f in facts.faults)
    summary = {
        "writes_acknowledged": len(facts.writes),
        "writes_tried": facts.writes_tried,
        "writes_lost": len(lost),
        "spoken": {kind: {b: counts.get(b, 0) for b in ("0", "1", "2+")} for kind, counts in classes.items()},
        "never_spoken": sum(1 for r in said if r["model_said"] == 0),
        "spoken_twice_or_more": sum(1 for r in said if r["model_said"] >= 2),
        "channels_stuck": len(facts.stuck),
        "book_resumed": bool(facts.book.get("resumed")),
        "faults": len(facts.faults),
        "fault_kinds": dict(kinds),
        "not_recovered": sum(unrecovered.values()),
    }
    return {
        "seed": facts.seed,
        "summary": summary,
        "recovery": per_target,
        "lost_writes": lost[:50],
        "said": said,
        "stuck": facts.stuck,
        "book": facts.book,
        "fault_log": facts.faults,
        "refused": facts.refused[:100],
        **facts.extra,
    }


def _s(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def markdown(report: dict[str, Any], title: str) -> str:
    s = report["summary"]
    kinds = ", ".join(f"{k}: {v}" for k, v in s["fault_kinds"].items())
    lines = [
        f"# {title}",
        "",
        f"Seed {report['seed']}, {s['faults']} faults ({kinds}), {report.get('duration_s', 0):.0f} s."
        " Generated by `python -m bench.chaos`; see docs/reliability.md.",
        "",
        "| check | result |",
        "|---|---|",
        f"| acknowledged writes lost | {s['writes_lost']} of {s['writes_acknowledged']} "
        f"({s['writes_tried']} tried) |",
        f"| acknowledged items never said | {s['never_spoken']} |",
        f"| acknowledged items said twice or more | {s['spoken_twice_or_more']} |",
        f"| channels stuck after quiescence | {s['channels_stuck']} |",
        f"| book resumed after the faults | {'yes' if s['book_resumed'] else 'NO'} |",
        f"| faults not recovered within 90 s | {s['not_recovered']} |",
        "",
        "## Said 0 / 1 / 2+ times (the model's responses)",
        "",
        "| kind | 0 | 1 | 2+ |",
        "|---|---|---|---|",
    ]
    for kind, b in sorted(s["spoken"].items()):
        lines.append(f"| {kind} | {b['0']} | {b['1']} | {b['2+']} |")
    lines += [
        "",
        "## Recovery per target (fault to health ok again)",
        "",
        "| target | faults | p50 s | max s | not recovered |",
        "|---|---|---|---|---|",
    ]
    for target, r in report["recovery"].items():
        lines.append(
            f"| {target} | {r['faults']} | {_s(r['p50_s'])} | {_s(r['max_s'])} | {r['not_recovered']} |"
        )
    bad = [r for r in report["said"] if r["model_said"] != 1]
    if bad:
        lines += ["", "## Items not said exactly once", ""]
        for r in bad[:40]:
            lines.append(f"- {r['kind']} `{r['token']}`: said {r['model_said']}x (bus turns {r['bus_turns']})"
                         f" {r.get('detail') or ''}")  # fmt: skip
    if report["stuck"]:
        lines += ["", "## Stuck after quiescence", ""]
        lines += [f"- {item}" for item in report["stuck"][:20]]
    if report["lost_writes"]:
        lines += ["", "## Lost writes (first 50)", "", ", ".join(report["lost_writes"])]
    lines += ["", "## Book", "", f"{report['book']}", ""]
    return "\n".join(lines)
