"""The quiet idle bus on a real focus (FOCUS-14): a holder renews on the fast
clock only while it holds something, and a follower asks for a snapshot only
when something says it is behind."""

from __future__ import annotations

import json
import time
from pathlib import Path

from nats.aio.client import Client
from nats.aio.msg import Msg

from huxley_focus.service import FocusService
from huxley_focus.settings import FocusSettings
from huxley_runtime.focus_client import FocusClient, FocusFollower
from huxley_wire.codec import encode
from huxley_wire.messages import focus as m
from huxley_wire.messages.focus import Channel
from huxley_wire.subjects import Subjects
from support.focus_peers import Recorder, RecordingHandler
from support.services import running
from support.waiting import until

LEASE_S = 1.0


def settings(nats_url: str, site: str, tmp_path: Path, **more: object) -> FocusSettings:
    return FocusSettings(  # type: ignore[call-arg]
        nats_url=nats_url, site=site, data_dir=tmp_path / "data", _env_file=None, **more
    )


async def renews_of(nc: Client, site: str, holder: str) -> list[float]:
    """Every renew `holder` sends, as it is seen on the bus."""
    seen: list[float] = []

    async def spy(msg: Msg) -> None:
        body = json.loads(msg.data)
        if body.get("op") == "renew" and body.get("holder") == holder:
            seen.append(len(seen))

    await nc.subscribe(Subjects(site).focus_rpc_of(holder), cb=spy)
    await nc.flush()
    return seen


async def test_a_holder_renews_fast_only_while_it_holds_something(
    nc: Client, site: str, nats_url: str, tmp_path: Path
) -> None:
    async with running(FocusService, settings(nats_url, site, tmp_path, focus_lease_s=LEASE_S)) as focus:
        renews = await renews_of(nc, site, "host")
        handler = RecordingHandler()
        # Idle it would renew once an hour: only the fast clock can keep a 1 s lease.
        client = FocusClient(
            nc, Subjects(site), "host", handler, renew_interval_s=0.2, idle_renew_interval_s=3600
        )
        await client.start()
        try:
            book = await client.acquire(Channel.CONTENT, "audiobooks")
            start = len(renews)
            await until(lambda: len(renews) >= start + 10, what="ten fast renews (2 s, twice the lease)")
            assert handler.changes(book.activity_id) == [("foreground", None)]  # never lost
            await client.release(book.activity_id)
            deadline = focus.core.holders["host"]
            assert deadline - focus.core.leases.heard["host"] == focus.core.leases.presence_s
            idle = len(renews)
            await until(lambda: focus.core.leases.heard["host"] + 2 * LEASE_S < time.time())
            assert len(renews) <= idle + 1  # at most the one in flight at the release
            assert "host" in focus.core.holders  # present, though silent for twice the lease
        finally:
            await client.stop()


async def test_a_follower_resyncs_when_a_fresh_focus_starts_without_polling(
    nc: Client, site: str, nats_url: str, tmp_path: Path
) -> None:
    memory_only = settings(nats_url, site, tmp_path, focus_persist=False)
    seen = Recorder()
    follower = FocusFollower(
        nc,
        Subjects(site),
        holder="host",
        on_change=lambda s: seen.add((s.activity_id, s.state)),
        resync_every_s=3600,
    )
    client = FocusClient(nc, Subjects(site), "host", RecordingHandler())
    try:
        async with running(FocusService, memory_only):
            await follower.start()
            await client.start()
            book = await client.acquire(Channel.CONTENT, "audiobooks")
            await seen.wait_for(lambda i: i == (book.activity_id, "foreground"))
            await client.stop(release=False)
        assert follower.seq > 0
        async with running(FocusService, memory_only):
            # It starts over at seq 0 and knows no book: its start says so.
            await seen.wait_for(lambda i: i == (book.activity_id, "none"))
            assert follower.state(book.activity_id) is None and follower.seq == 0
    finally:
        await follower.stop()


async def test_a_resync_that_found_no_focus_is_asked_again_until_one_answers(
    nc: Client, site: str, nats_url: str, tmp_path: Path
) -> None:
    """A queue event says focus started over, but the snapshot it prompts
    finds nobody (focus not answering yet): the follower keeps asking on its
    check clock, not only at the hourly last resort."""
    subjects = Subjects(site)
    seen = Recorder()
    follower = FocusFollower(
        nc,
        subjects,
        holder="host",
        on_change=lambda s: seen.add((s.activity_id, s.state)),
        resync_every_s=3600,
        check_interval_s=0.05,
        request_timeout_s=0.3,
    )
    client = FocusClient(nc, subjects, "host", RecordingHandler())
    try:
        async with running(FocusService, settings(nats_url, site, tmp_path, focus_persist=False)):
            await follower.start()
            await client.start()
            book = await client.acquire(Channel.CONTENT, "audiobooks")
            await seen.wait_for(lambda i: i == (book.activity_id, "foreground"))
            await client.stop(release=False)
        # No focus now. A witness takes the snapshot request this prompts and
        # leaves it unanswered, so that resync fails (times out).
        asked: list[Msg] = []

        async def witness(msg: Msg) -> None:
            asked.append(msg)

        silent = await nc.subscribe(subjects.focus_rpc_of("host"), cb=witness)
        await nc.flush()
        await nc.publish(subjects.focus_event("queue"), encode(m.QueueEvent(seq=0, queue=[])))
        await until(lambda: len(asked) == 1, 10, "the follower to ask for a snapshot")
        await silent.unsubscribe()

        # Then something answers for focus (a scripted one: a real focus would
        # announce its own start, which would resync the follower anyway).
        async def snapshot(msg: Msg) -> None:
            empty = m.Snapshot(seq=0, channels={}, foreground=None, queue=[])
            await msg.respond(encode(empty))

        await nc.subscribe(subjects.focus_rpc_of("host"), cb=snapshot)
        await seen.wait_for(lambda i: i == (book.activity_id, "none"))
        assert follower.state(book.activity_id) is None and follower.seq == 0
    finally:
        await follower.stop()


async def test_a_holder_that_started_before_focus_asks_again_soon_then_settles(
    nc: Client, site: str, nats_url: str, tmp_path: Path
) -> None:
    """At `huxley up` a holder may start before focus: after a renew nobody
    answered it asks again after 50 ms, doubling up to its fast clock; once
    focus answers it is back on the idle clock. (Its renews are made here one
    by one, without its lease loop, so the pacing is read, not timed.)"""
    client = FocusClient(nc, Subjects(site), "host", RecordingHandler(), renew_interval_s=1.0)
    pauses = []
    for _ in range(7):
        await client._renew()  # no focus yet: nobody answers
        pauses.append(client._interval())
    assert not client.lease_ok
    assert pauses == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    async with running(FocusService, settings(nats_url, site, tmp_path)):
        await client._renew()
        assert client.lease_ok
        assert client._interval() == client.idle_renew_interval_s
