"""Inline subscriptions (huxley_runtime.inline_sub) over a real nats-server:
messages reach the handler through the hook (not nats-py's queue), in order,
a failing handler does not stop the reader, and the client's other
subscriptions and requests work as before."""

from __future__ import annotations

import asyncio

from nats.aio.client import Client
from nats.aio.msg import Msg

from huxley_runtime.inline_sub import _Hook, subscribe_inline
from huxley_wire.subjects import Subjects
from support.waiting import until


async def test_messages_reach_the_handler_inline_in_order(nc: Client, site: str) -> None:
    s = Subjects(site)
    got: list[tuple[str, bytes]] = []
    await subscribe_inline(nc, s.audio_out_owned_all(), lambda subject, data: got.append((subject, data)))
    hook = nc.__dict__["_process_msg"]
    assert isinstance(hook, _Hook)
    for i in range(100):
        await nc.publish(s.audio_out_of("bridge", f"a{i % 3}"), str(i).encode())
    await until(lambda: len(got) == 100, what="100 messages")
    assert [int(data) for _, data in got] == list(range(100))
    assert got[4][0] == s.audio_out_of("bridge", "a1")
    assert hook.count == 100  # through the hook, not nats-py's subscription queue


async def test_a_failing_handler_does_not_stop_the_reader(nc: Client, site: str) -> None:
    s = Subjects(site)
    got: list[bytes] = []

    def handler(subject: str, data: bytes) -> None:
        if data == b"boom":
            raise ValueError("a bug in the handler")
        got.append(data)

    await subscribe_inline(nc, s.audio_out_owned_all(), handler)
    for data in (b"1", b"boom", b"2"):
        await nc.publish(s.audio_out_of("bridge", "a"), data)
    await until(lambda: got == [b"1", b"2"], what="the messages around the failing one")
    assert nc.__dict__["_process_msg"].failures == 1

    # The client still serves ordinary subscriptions and requests.
    async def respond(msg: Msg) -> None:
        await msg.respond(msg.data)

    echo = await nc.subscribe(f"{s.prefix}.echo", cb=respond)
    reply = await nc.request(f"{s.prefix}.echo", b"still here", timeout=5)
    assert reply.data == b"still here"
    await echo.unsubscribe()


async def test_messages_with_headers_take_the_ordinary_path(nc: Client, site: str) -> None:
    s = Subjects(site)
    got: list[bytes] = []
    await subscribe_inline(nc, s.audio_out_owned_all(), lambda subject, data: got.append(data))
    await nc.publish(s.audio_out_of("bridge", "a"), b"with", headers={"x": "1"})
    await nc.publish(s.audio_out_of("bridge", "a"), b"without")
    await until(lambda: sorted(got) == [b"with", b"without"], what="both messages")
    assert nc.__dict__["_process_msg"].count == 1


async def test_a_backlog_lets_the_loop_run_in_between(nc: Client, site: str) -> None:
    s = Subjects(site)
    seen_at: list[int] = []
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    def handler(subject: str, data: bytes) -> None:
        seen_at.append(ticks)

    await subscribe_inline(nc, s.audio_out_owned_all(), handler, yield_every=8)
    task = asyncio.create_task(ticker())
    try:
        for _ in range(400):
            await nc.publish(s.audio_out_of("bridge", "a"), bytes(1000))
        await until(lambda: len(seen_at) == 400, what="the backlog")
    finally:
        task.cancel()
    # Read in 32 KiB chunks (~30 of these messages), but handled in runs of
    # at most 8 between two turns of the loop.
    runs: dict[int, int] = {}
    for tick in seen_at:
        runs[tick] = runs.get(tick, 0) + 1
    assert max(runs.values()) <= 8
