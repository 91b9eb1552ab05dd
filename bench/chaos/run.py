"""`python -m bench.chaos --faults N --seed S`: the household under faults,
then quiescence, then the verdict in bench/results/chaos.{json,md}.

Phases: bring the stack up (nats-server and the five services under the
supervisor); connect the web client; start the household; inflict the
faults one after another; stop the household; wait until every service is
healthy, everything acknowledged is due and focus has nothing queued; end
the call with a press; take focus's snapshot (stuck channels); ask for the
book again (resumed?); read every acknowledged write back.
"""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from bench.chaos.faults import Outcome, inflict, plan
from bench.chaos.household import FAILURES, Household
from bench.chaos.stack import PERSONA, SERVICES, ChaosStack
from bench.chaos.verdict import Facts, markdown, stuck_activities, verdict
from bench.chaos.web_client import WebClient
from huxley_runtime.rpc import request
from huxley_skill_audiobooks.skill import RESUME_REWIND_SECONDS
from huxley_wire.messages.bridge import BridgeSnapshotRequest
from huxley_wire.messages.focus import SnapshotRequest
from huxley_wire.messages.storage import KvList

RESULTS = Path(__file__).resolve().parents[1] / "results"
SETTLE_AFTER_DUE_S = 25.0  # an item due during the last fault has this long to be said


async def _poll(condition: Any, timeout_s: float, interval_s: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await condition():
            return True
        await asyncio.sleep(interval_s)
    return False


async def _stored(stack: ChaosStack) -> dict[str, str | None]:
    subject = stack.subjects.storage_kv(PERSONA, "chaos")
    found: dict[str, str | None] = {}
    after: str | None = None
    while True:
        page = await request(stack.nc, subject, KvList(prefix="w", after=after), timeout=5.0)
        found.update(page.items)
        if page.next_after is None:
            return found
        after = page.next_after


async def _focus_quiet(stack: ChaosStack) -> bool:
    try:
        snap = await request(stack.nc, stack.subjects.focus_rpc_of("bridge"), SnapshotRequest(), timeout=2.0)
    except FAILURES:
        return False
    return not snap.queue and snap.current_inject is None


async def _bridge_idle(stack: ChaosStack) -> bool:
    try:
        snap = await request(stack.nc, stack.subjects.bridge_rpc(), BridgeSnapshotRequest(), timeout=2.0)
    except FAILURES:
        return False
    return snap.turn_id is None


async def _live_instances(stack: ChaosStack) -> set[str]:
    found = set()
    for service in SERVICES:
        health = await stack.health(service)
        if health is not None:
            found.add(health.instance)
            if service == "realtime-bridge":
                found.add("bridge")  # the bridge holds focus under its fixed name
    return found


async def _book(stack: ChaosStack, household: Household, web: WebClient) -> dict[str, Any]:
    """Ask for the book again and see it play on from where it was."""
    before = await household.book_progress()
    heard_before = web.audio_bytes
    pressed = await household.press("3")
    grew = await _poll(lambda: _async(web.audio_bytes - heard_before > 48_000 * 4), 30)
    await asyncio.sleep(2)
    after = await household.book_progress()
    position = float((after or {}).get("position_seconds") or 0)
    earlier = float((before or {}).get("position_seconds") or 0)
    # The skill rewinds a little on resume; from 0 again would be a lost position.
    from_at_least = max(0.0, earlier - RESUME_REWIND_SECONDS)
    playing = bool((after or {}).get("playing"))
    resumed = pressed and grew and playing and position > 0 and position + 0.5 >= from_at_least
    return {
        "resumed": resumed,
        "pressed": pressed,
        "audio_heard": grew,
        "expected_from_s": from_at_least,
        "progress_before": before,
        "progress_after": after,
    }


async def _async(value: Any) -> Any:
    return value


async def run_chaos(faults: int, seed: int, root: Path) -> dict[str, Any]:
    started = time.monotonic()
    schedule = plan(faults, random.Random(seed))
    outcomes: list[Outcome] = []
    async with ChaosStack(root) as stack:
        await stack.wait_ready()
        web = WebClient(stack.ws_url)
        web.start()
        await _poll(lambda: _async(web.connects > 0), 20, 0.1)
        household = Household(stack, web, random.Random(seed + 1))
        stop = asyncio.Event()
        chores = asyncio.create_task(household.run(stop))
        await asyncio.sleep(6)  # the book starts, the first chores are done
        await household.book_progress()
        for fault in schedule:
            await asyncio.sleep(fault.gap_s)
            outcome = await inflict(stack, fault)
            outcomes.append(outcome)
            print(f"fault {fault.index + 1}/{faults}: {fault.kind} {fault.target} -> "
                  f"{outcome.recovery_s if outcome.recovered else outcome.note}", flush=True)  # fmt: skip
        stop.set()
        await chores
        # Quiescence: healthy, everything due, nothing queued.
        healthy = await _poll(stack.all_healthy, 120)
        due = max((item.due for item in household.ledger.expected), default=time.monotonic())
        await asyncio.sleep(max(0.0, due + SETTLE_AFTER_DUE_S - time.monotonic()))
        # A press ends a call still open, like a user would; what was queued
        # behind the call (block_behind_comms) is said then.
        await household.press("0")
        quiet = await _poll(lambda: _focus_quiet(stack), 90)
        idle = await _poll(lambda: _bridge_idle(stack), 30)
        await asyncio.sleep(2)
        snapshot = await request(
            stack.nc, stack.subjects.focus_rpc_of("bridge"), SnapshotRequest(), timeout=5.0
        )
        stuck = stuck_activities(snapshot.model_dump(mode="json"), await _live_instances(stack))
        book = await _book(stack, household, web)
        stored = await _stored(stack)
        await web.stop()
        transcripts = [
            (e.body.get("turn_id"), str(e.body.get("text", "")))
            for e in stack.recorder.of("bridge.event.transcript")
            if e.body.get("role") == "assistant"
        ]
        facts = Facts(
            seed=seed,
            faults=[o.as_dict() for o in outcomes],
            writes=household.ledger.writes,
            writes_tried=household.ledger.writes_tried,
            stored={k: stored.get(k) for k in household.ledger.writes},
            expected=[
                {"kind": s.kind, "token": s.token, "detail": s.detail} for s in household.ledger.expected
            ],
            model_texts=[p.text for p in stack.sim.responses],
            bus_transcripts=transcripts,
            stuck=stuck,
            book=book,
            refused=household.ledger.refused,
            extra={
                "duration_s": round(time.monotonic() - started, 1),
                "quiescence": {"healthy": healthy, "focus_quiet": quiet, "bridge_idle": idle},
                "restarts": stack.restarts(),
                "web_client": {
                    "connects": web.connects,
                    "audio_s": round(web.audio_s, 1),
                    "presses": web.presses,
                    "failed_presses": web.failed_presses,
                    "received": dict(web.received),
                },
                "model_connects": stack.sim.connects,
                "snapshot": snapshot.model_dump(mode="json"),
            },
        )
    return verdict(facts)


def write_report(report: dict[str, Any], out_dir: Path, name: str, title: str) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"{name}.json", out_dir / f"{name}.md"
    json_path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    md_path.write_text(markdown(report, title))
    return json_path, md_path


app = typer.Typer(add_completion=False)


@app.command()
def main(
    faults: Annotated[int, typer.Option(help="How many faults to inflict")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the fault plan and the household")] = 1,
    out: Annotated[Path, typer.Option(help="Where chaos.json and chaos.md go")] = RESULTS,
    name: Annotated[str, typer.Option(help="Report file name, without extension")] = "chaos",
    keep: Annotated[Path | None, typer.Option(help="Keep the run's logs and data here")] = None,
) -> None:
    """Run the household under faults and write the report."""
    if keep is not None:
        report = asyncio.run(run_chaos(faults, seed, keep))
    else:
        with tempfile.TemporaryDirectory(prefix="huxley-chaos-") as tmp:
            report = asyncio.run(run_chaos(faults, seed, Path(tmp)))
    json_path, md_path = write_report(report, out, name, f"Chaos run: {faults} faults")
    print(md_path.read_text())
    print(f"written: {json_path} {md_path}")


if __name__ == "__main__":
    app()
