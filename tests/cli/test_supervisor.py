"""`huxley up`'s supervisor: output of any line length keeps flowing (a line
over 64 KiB used to kill the line reader, fill the pipe and freeze the child
in its next write), and the pure parts (line splitting, the watchdog's
bookkeeping, its settings)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from huxley_cli.lines import LineSplitter
from huxley_cli.supervisor import ChildSpec, Supervisor
from huxley_cli.watchdog import Liveness, WatchdogConfig, probe_health
from huxley_wire.permissions import Role
from huxley_wire.subjects import Subjects
from support.waiting import until

CHATTY = Path(__file__).with_name("chatty_child.py")


# -- line splitting ---------------------------------------------------------------
@given(
    lines=st.lists(st.text(alphabet="abc é\t", max_size=40), max_size=20),
    cuts=st.lists(st.integers(0, 2000), max_size=10),
)
def test_lines_come_out_whole_however_the_stream_is_chunked(lines, cuts):
    data = "".join(f"{line}\n" for line in lines).encode()
    splitter = LineSplitter(max_line=1000)
    out: list[str] = []
    start = 0
    for cut in sorted(cuts):
        out += splitter.feed(data[start:cut])
        start = max(start, cut)
    out += splitter.feed(data[start:])
    out += splitter.end()
    assert out == [line.rstrip() for line in lines]


@hypothesis_settings(deadline=None)
@given(length=st.integers(101, 100_000), chunk=st.integers(50, 70_000))
def test_a_long_line_is_cut_and_counted_and_the_next_one_is_whole(length, chunk):
    data = b"x" * length + b"\nnext\n"
    splitter = LineSplitter(max_line=100)
    out: list[str] = []
    for i in range(0, len(data), chunk):
        out += splitter.feed(data[i : i + chunk])
    assert out == ["x" * 100 + f" ... [line cut: {length - 100} more bytes]", "next"]
    assert len(splitter._buffer) == 0


def test_a_last_line_without_newline_is_kept():
    splitter = LineSplitter()
    assert splitter.feed(b"one\ntwo") == ["one"]
    assert splitter.end() == ["two"]


# -- the watchdog's bookkeeping ---------------------------------------------------
def test_liveness_kills_after_n_misses_in_a_row_outside_the_grace_period():
    live = Liveness(WatchdogConfig(failures=3, grace_s=10))
    live.grace(now=100)
    assert not live.counting(105) and live.counting(110)
    assert [live.record(False), live.record(False), live.record(True)] == [False, False, False]
    assert [live.record(False), live.record(False), live.record(False)] == [False, False, True]
    assert live.misses == 0  # the next child starts over


def test_watchdog_settings_from_the_environment():
    config = WatchdogConfig.from_env(
        {"HUXLEY_WATCHDOG_INTERVAL_S": "0.5", "HUXLEY_WATCHDOG_FAILURES": "5", "HUXLEY_WATCHDOG_GRACE_S": "1"}
    )
    assert (config.interval_s, config.failures, config.grace_s) == (0.5, 5, 1.0)
    assert WatchdogConfig.from_env({}) == WatchdogConfig()
    assert WatchdogConfig().failures == 3 and WatchdogConfig().interval_s == 10.0
    assert WatchdogConfig().retry_s == 2.0 and WatchdogConfig(interval_s=0.5).pace_s == 0.5


def test_liveness_asks_slowly_while_answered_and_quickly_after_a_miss():
    live = Liveness(WatchdogConfig(interval_s=10, retry_s=2))
    assert live.due(100)  # never asked
    live.asked(100)
    live.record(True)
    assert not live.due(108) and live.due(110)
    live.asked(110)
    live.record(False)  # unanswered: the next ask comes on the retry pace
    assert not live.due(111) and live.due(112)
    live.asked(112)
    live.record(True)
    assert not live.due(114) and live.due(122)


# -- a real child -------------------------------------------------------------------
async def test_a_70_kb_line_does_not_freeze_the_child(nc, settings, base_env, auth):
    out = io.StringIO()
    # A made-up service: it runs as the test harness; the watchdog, as `huxley up`'s, as the observer.
    env = {**base_env, **auth.env(Role.HARNESS), "HUXLEY_LOG_LEVEL": "warning"}
    spec = ChildSpec("chatty", [sys.executable, str(CHATTY)], env)
    watcher = settings.model_copy(update=auth.fields(Role.OBSERVER))
    # Watchdog on with the defaults' shape, so a frozen child would also be seen as such.
    supervisor = Supervisor([spec], out, bus=watcher, watchdog=WatchdogConfig(grace_s=60))
    supervisor.start()
    child = supervisor.children[0]
    try:
        await until(lambda: "all written" in out.getvalue(), what="the lines after the 70 KB one")
        text = out.getvalue()
        assert "L" * 1000 in text and "[line cut: " in text
        for n in (1, 150, 300):
            assert f"chatty | tick {n} " in text
        # Still alive and answering on the bus.
        subject = Subjects(settings.site).health("chatty")
        assert await probe_health(nc, subject, child.instance, timeout_s=5) is True
        assert child.restarts == 0 and child.process is not None and child.process.returncode is None
    finally:
        await supervisor.stop(grace_s=10)
    assert child.process is not None and child.process.returncode is not None
