"""The short chaos run of `make test` (issue 13 item 6): the household
against the whole stack while six faults (SIGKILL, SIGSTOP then SIGCONT,
SIGSTOP left to the watchdog; nats-server included) hit it, seeded. The
100-fault run is `make chaos` (bench/chaos); this one asserts the promises
that must hold on any seed."""

from __future__ import annotations

import json

import pytest

from bench.chaos.run import run_chaos

pytestmark = pytest.mark.slow

FAULTS = 6
SEED = 13


@pytest.mark.timeout(420)
async def test_short_chaos_run_keeps_every_promise(tmp_path):
    report = await run_chaos(FAULTS, SEED, tmp_path / "run")
    summary = report["summary"]
    shown = json.dumps({k: report[k] for k in ("summary", "recovery", "stuck", "book")}, indent=1)
    assert summary["faults"] == FAULTS, shown
    assert summary["writes_acknowledged"] > 0, shown
    assert summary["writes_lost"] == 0, shown
    assert summary["spoken_twice_or_more"] == 0, shown
    assert summary["never_spoken"] == 0, shown
    assert summary["channels_stuck"] == 0, shown
    assert summary["not_recovered"] == 0, shown
    assert summary["book_resumed"], shown
