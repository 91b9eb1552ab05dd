"""The seeds' scenarios end to end: focus as its own process, holders and an
observer each in their own process (support.focus_holder), and this test as
the bridge (holder `bridge`, answering run_inject) — over a real nats-server.
Then SIGKILL of focus and of a holder."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from huxley_runtime.bus import settle
from huxley_wire.messages.focus import ActivityEvent, Channel, EndReason, InjectEvent, PendingEffect
from huxley_wire.subjects import Subjects
from support.focus_holder import HolderProcess
from support.focus_peers import BridgePeer, Recorder
from support.services import ServiceProcess, wait_healthy

pytestmark = pytest.mark.slow

BOOK = {
    "channel": "content",
    "interface": "audiobooks",
    "patience_ms": 30 * 60 * 1000,
    "meta": {"kind": "stream"},
}


class World:
    """focus (a process), the bridge (this test), holders and observers (processes)."""

    def __init__(self, nc: Client, nats_url: str, site: str, env: dict[str, str], logs: Path) -> None:
        self.nc = nc
        self.nats_url = nats_url
        self.site = site
        self.env = env
        self.logs = logs
        self.focus: ServiceProcess | None = None
        self.bridge = BridgePeer(nc, site)
        self.procs: list[HolderProcess] = []
        self.activity = Recorder()
        self.injects = Recorder()
        self.starts = 0

    async def start_focus(self) -> None:
        self.starts += 1
        self.focus = ServiceProcess("huxley_focus", self.env, self.logs / f"focus-{self.starts}.log").start()
        await wait_healthy(self.nc, self.site, "focus")

    async def start(self) -> World:
        subjects = Subjects(self.site)

        def recorder(log: Recorder, model: Any) -> Any:
            async def on(msg: Msg) -> None:
                log.add(model.model_validate_json(msg.data))

            return on

        await self.nc.subscribe(subjects.focus_event("activity"), cb=recorder(self.activity, ActivityEvent))
        await self.nc.subscribe(subjects.focus_event("inject"), cb=recorder(self.injects, InjectEvent))
        await settle(self.nc)
        await self.start_focus()
        await self.bridge.start()
        return self

    async def holder(self, name: str, **options: Any) -> HolderProcess:
        proc = await HolderProcess(self.nats_url, self.site, name, **options).start()
        self.procs.append(proc)
        return proc

    async def stop(self) -> None:
        for proc in self.procs:
            await proc.stop()
        await self.bridge.stop()
        if self.focus is not None:
            self.focus.kill()

    def fired(self, inject_id: str) -> list[str]:
        return [e.status for e in self.injects.items if e.inject_id == inject_id]


@pytest.fixture
async def world(
    nc: Client, nats_url: str, site: str, base_env: dict[str, str], tmp_path: Path
) -> AsyncIterator[World]:
    w = await World(nc, nats_url, site, base_env, tmp_path).start()
    try:
        yield w
    finally:
        await w.stop()


async def test_book_and_timer(world: World) -> None:
    host = await world.holder("host")
    observer = await world.holder("observer", follow=True)
    book = await host.call("acquire", **BOOK)
    assert book["state"] == "foreground"
    timer = await host.call("inject", prompt="Tell the user: the tea is ready", priority="block_behind_comms")
    assert timer["status"] == "fired"
    run = await world.bridge.next_inject(timer["inject_id"])
    await host.wait_focus(book["activity_id"], "background")
    await observer.reports.wait_for(
        lambda r: r.get("activity_id") == run.activity_id and r["state"] == "foreground" and r["gain"] == 1.0
    )
    await world.bridge.finish(run)
    await host.wait_focus(book["activity_id"], "foreground")
    assert host.states(book["activity_id"]) == ["foreground", "background", "foreground"]
    await observer.reports.wait_for(
        lambda r: r.get("activity_id") == book["activity_id"] and r["gain"] == 1.0
    )
    assert world.fired(timer["inject_id"]) == ["fired", "done"]


async def test_book_and_incoming_call(world: World) -> None:
    host = await world.holder("host")
    book = await host.call("acquire", **BOOK)
    announce = await host.call(
        "inject", prompt="Llamada de María, contestando", priority="block_behind_comms", wait=True
    )
    assert announce["will_notify_done"]
    run = await world.bridge.next_inject(announce["inject_id"])
    # The announcement's turn ends holding the call as its side effect.
    ended = await world.bridge.client.turn_end(
        run.activity_id,
        inject_id=run.inject_id,
        pending=PendingEffect(kind="claim", host="host", skill="calls", effect_id="call-1", title="María"),
    )
    assert ended.outcome == "started_claim"
    call = await host.wait_focus(ended.effect_activity_id, "foreground")  # type: ignore[arg-type]
    assert call["meta"]["effect_id"] == "call-1" and call["channel"] == "comms"
    assert host.states(book["activity_id"]) == ["foreground", "background"]  # parked, not stopped
    await host.call("release", activity_id=call["activity_id"])
    await host.wait_focus(book["activity_id"], "foreground")
    assert world.fired(announce["inject_id"]) == ["fired", "done"]


async def test_ptt_during_a_book(world: World) -> None:
    host = await world.holder("host")
    book = await host.call("acquire", **BOOK)
    queued = await host.call("inject", prompt="You have 3 messages", priority="normal")
    assert queued["status"] == "queued"  # NORMAL waits behind the book
    stopped = await world.bridge.client.interrupt()
    assert stopped.stopped == [book["activity_id"]] and not stopped.ended_claim
    report = await host.wait_focus(book["activity_id"], "none")
    assert report["reason"] == "user_ptt"  # no patience for the user
    turn = await world.bridge.client.acquire(Channel.DIALOG, "user")
    assert turn.state == "foreground"
    ended = await world.bridge.client.turn_end(turn.activity_id)
    assert (ended.outcome, ended.inject_id) == ("fired_inject", queued["inject_id"])  # the queue survived


async def test_preempt_breaks_a_call(world: World) -> None:
    host = await world.holder("host")
    alarm = await world.holder("alarm")
    book = await host.call("acquire", **BOOK)
    call = await host.call("acquire", channel="comms", interface="calls", meta={"kind": "claim"})
    await host.wait_focus(book["activity_id"], "background")
    reminder = await host.call("inject", prompt="Take your pill", priority="block_behind_comms")
    assert reminder["status"] == "queued"  # never interrupts the call
    fire = await alarm.call("inject", prompt="Fire alarm!", priority="preempt")
    assert fire["status"] == "fired"
    ended = await host.wait_focus(call["activity_id"], "none")
    assert ended["reason"] == "preempted"
    run = await world.bridge.next_inject(fire["inject_id"])
    await world.bridge.finish(run)
    run2 = await world.bridge.next_inject(reminder["inject_id"])  # the call is gone: the reminder goes
    await world.bridge.finish(run2)
    await host.wait_focus(book["activity_id"], "foreground")


async def test_normal_waits_behind_content(world: World) -> None:
    host = await world.holder("host")
    book = await host.call("acquire", **BOOK)
    news = await host.call("inject", prompt="Here is the news", priority="normal")
    assert news["status"] == "queued"
    assert world.bridge.run_injects.items == []
    await host.call("release", activity_id=book["activity_id"])  # the book ends
    run = await world.bridge.next_inject(news["inject_id"])
    assert run.prompt == "Here is the news"


async def test_patience_expiry_across_processes(world: World) -> None:
    host = await world.holder("host", hook_inject="I paused your book")
    book = await host.call("acquire", channel="content", interface="audiobooks", patience_ms=500)
    call = await host.call("acquire", channel="comms", interface="calls")
    await host.wait_focus(book["activity_id"], "none")
    kinds = [
        (r["report"], r.get("state"))
        for r in host.reports.items
        if r.get("activity_id") == book["activity_id"] and r["report"] in ("focus", "patience")
    ]
    assert kinds == [("focus", "foreground"), ("focus", "background"), ("patience", None), ("focus", "none")]
    await host.call("release", activity_id=call["activity_id"])
    run = await world.bridge.next_inject()
    assert run.prompt == "I paused your book"


async def test_sigkill_focus_with_a_paused_book_and_a_queued_inject(world: World) -> None:
    host = await world.holder("host")
    book = await host.call("acquire", **BOOK)
    turn = await world.bridge.client.acquire(Channel.DIALOG, "user")
    await host.wait_focus(book["activity_id"], "background")
    queued = await host.call("inject", prompt="Timer done", priority="block_behind_comms")
    assert queued["status"] == "queued"

    assert world.focus is not None
    world.focus.kill()  # SIGKILL
    await world.start_focus()

    # The user's turn ends after the restart: the queued inject fires, once.
    ended = await world.bridge.client.turn_end(turn.activity_id)
    assert (ended.outcome, ended.inject_id) == ("fired_inject", queued["inject_id"])
    run = await world.bridge.next_inject(queued["inject_id"])
    await world.bridge.finish(run)
    await host.wait_focus(book["activity_id"], "foreground")  # the book still resumes
    assert world.fired(queued["inject_id"]) == ["queued", "fired", "done"]
    assert {(r.inject_id, r.activity_id) for r in world.bridge.run_injects.items} == {
        (run.inject_id, run.activity_id)
    }
    # A retry of the same inject after the restart is not a second inject.
    again = await host.call("inject", prompt="Timer done", inject_id=queued["inject_id"])
    assert again["status"] == "duplicate"


async def test_sigkill_focus_while_an_inject_is_running(world: World) -> None:
    host = await world.holder("host")
    book = await host.call("acquire", **BOOK)
    fired = await host.call("inject", prompt="Reminder", priority="block_behind_comms")
    first = await world.bridge.next_inject(fired["inject_id"])
    await host.wait_focus(book["activity_id"], "background")

    assert world.focus is not None
    world.focus.kill()
    await world.start_focus()

    # The restarted focus asks again (the bridge answers already_running) …
    again = await world.bridge.run_injects.wait_for(lambda r: r is not first)
    assert (again.inject_id, again.activity_id) == (first.inject_id, first.activity_id)
    # … and the turn's end still resumes the book; the inject fired once.
    await world.bridge.finish(first)
    await host.wait_focus(book["activity_id"], "foreground")
    assert world.fired(fired["inject_id"]) == ["fired", "done"]


async def test_sigkill_focus_the_moment_run_inject_arrives(world: World) -> None:
    """The state write leaves ahead of run_inject on focus's one connection and
    run_inject does not wait for its ack (PERF-11): focus killed as the bridge
    hears it, before anything is acked, restarts knowing the inject it fired."""
    focus = world.focus
    assert focus is not None

    def kill_focus(_run: Any) -> None:
        if world.focus is focus:
            focus.kill()  # SIGKILL, before the bridge answers

    world.bridge.heard = kill_focus
    host = await world.holder("host")
    # Its caller may hear an error or, retrying, `duplicate`: either way one inject.
    call = asyncio.create_task(host.call("inject", prompt="Reminder", inject_id="inject-at-kill"))
    first = await world.bridge.next_inject("inject-at-kill")
    world.bridge.heard = None
    await world.start_focus()

    again = await world.bridge.run_injects.wait_for(lambda r: r is not first)
    assert (again.inject_id, again.activity_id) == (first.inject_id, first.activity_id)
    await world.bridge.finish(first)
    await world.injects.wait_for(lambda e: e.inject_id == "inject-at-kill" and e.status == "done")
    with contextlib.suppress(Exception):
        await call
    assert world.fired("inject-at-kill").count("fired") <= 1


async def test_sigkill_of_a_holder_frees_its_activity(world: World) -> None:
    radio_host = await world.holder("radio-host")
    siren_host = await world.holder("siren-host")
    radio = await radio_host.call("acquire", channel="content", interface="radio", patience_ms=300_000)
    siren = await siren_host.call("acquire", channel="alert", interface="siren")
    await radio_host.wait_focus(radio["activity_id"], "background")

    killed_at = time.monotonic()
    siren_host.kill()
    gone = await world.activity.wait_for(
        lambda e: e.activity_id == siren["activity_id"] and e.state == "none"
    )
    elapsed = time.monotonic() - killed_at
    assert gone.reason == EndReason.LEASE_EXPIRED
    await radio_host.wait_focus(radio["activity_id"], "foreground")  # the next one is promoted
    print(f"holder SIGKILL -> activity gone after {elapsed:.2f} s (lease 3 s)")


async def test_snapshot_after_restart_has_the_same_stacks(world: World) -> None:
    host = await world.holder("host")
    await host.call("acquire", **BOOK)
    await world.bridge.client.acquire(Channel.DIALOG, "user")
    before = await world.bridge.client.snapshot()
    assert world.focus is not None
    world.focus.kill()
    await world.start_focus()
    after = await world.bridge.client.snapshot()
    assert after.channels == before.channels
