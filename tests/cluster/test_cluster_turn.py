"""The whole stack on a three-node cluster (auth on, every service given all
seed URLs, focus state in KV with three copies, the simulator as the model):
a book plays, a timer's announcement is being spoken and a second timer's
is queued behind it when the node the bridge (second case: focus) is
connected to is SIGKILLed; which other services shared that node varies.

What must hold: the turn being spoken ends with a status, the queued
announcement is said exactly once (one inject fired, one prompt to the
model, heard once), and the book resumes where it was paused."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from e2e.conftest import Book
from e2e.speaker import BOOK, Timeline
from e2e.test_e2e import LONG, TEA, book_playing, dialog_is_free, references, spoken_ms

from cluster.conftest import Clients, jetstream_ready
from cluster.whole_stack import ClusterStack, start_stack
from huxley_cli.natsserver.cluster import Cluster
from huxley_realtime_sim import SimServer
from huxley_wire.permissions import Role, service_identity
from huxley_wire.subjects import focus_kv_bucket

pytestmark = pytest.mark.slow

ENDED = ("ended", "cancelled")


@pytest.fixture(params=["realtime-bridge", "focus"])
async def stack(
    request: pytest.FixtureRequest,
    cluster: Cluster,
    clients: Clients,
    cluster_site: str,
    tmp_path: Path,
    sim: SimServer,
    book: Book,
) -> AsyncIterator[ClusterStack]:
    """The stack, watched from a node other than that of the service whose
    node the test kills (the param)."""
    probe = await clients.connect(service_identity(Role.FOCUS, cluster_site), cluster.seed_urls)
    await jetstream_ready(probe, focus_kv_bucket(cluster_site))  # focus keeps three copies
    running = await start_stack(cluster, clients, cluster_site, tmp_path, sim, book, target=request.param)
    try:
        yield running
    finally:
        await running.stop()


def prompts_with(stack: ClusterStack, text: str) -> int:
    """How many times the bridge gave the model something that says `text`
    (a conversation item or a response's instructions; not the session's)."""
    kinds = ("conversation.item.create", "response.create")
    return sum(1 for e in stack.sim.received if e.get("type") in kinds and text in json.dumps(e))


async def test_killing_a_node_mid_turn_loses_nothing(
    cluster: Cluster, stack: ClusterStack, book: Book
) -> None:
    mark = stack.log.mark
    await stack.press("3")
    book_id = await book_playing(stack, after=mark, ms=1000)

    # The first timer's announcement (long) is spoken over the paused book ...
    fired = stack.log.mark
    reply = await stack.call_tool("timers", "set_timer", {"seconds": 1, "message": LONG})
    assert '"ok": true' in reply["output"], reply
    speaking = await stack.log.wait(
        "bridge.event.turn", lambda t: t["kind"] == "injected" and t["phase"] == "speaking", after=fired
    )
    first_inject = speaking["inject_id"]
    await stack.played_at_least(speaking["activity_id"], 300, after=fired)
    # ... and the second one waits behind it.
    reply = await stack.call_tool("timers", "set_timer", {"seconds": 1, "message": TEA})
    assert '"ok": true' in reply["output"], reply
    queued = await stack.log.wait(
        "focus.event.inject",
        lambda i: i["status"] == "queued" and i["inject_id"] != first_inject,
        after=fired,
    )
    tea = queued["inject_id"]
    turn_over = lambda t: t["turn_id"] == speaking["turn_id"] and t["phase"] in ENDED  # noqa: E731
    assert not stack.log.matching("bridge.event.turn", turn_over), "the turn ended before the kill"

    victim = stack.nodes[stack.target]
    assert victim != stack.watcher
    sharing = sorted(name for name, node in stack.nodes.items() if node == victim)
    cluster.servers[victim].kill()

    # The turn being spoken ends, with a status.
    ended = await stack.log.wait("bridge.event.turn", turn_over, after=fired, timeout=40)
    assert ended["phase"] in ENDED, (sharing, ended)
    # The queued announcement is said once.
    told = await stack.log.wait(
        "bridge.event.turn",
        lambda t: t["inject_id"] == tea and t["phase"] in ENDED,
        after=fired,
        timeout=40,
    )
    assert told["phase"] == "ended", (sharing, told, stack.log.tail())
    # The book resumes after it.
    tea_began = next(
        i
        for i, e in enumerate(stack.log.events)
        if e.subject == "bridge.event.turn" and e.body["inject_id"] == tea
    )
    await stack.log.wait(
        "focus.event.activity",
        lambda a: a["activity_id"] == book_id and a["state"] == "foreground",
        after=tea_began,
        timeout=40,
    )
    await stack.played_at_least(book_id, stack.played_ms(book_id) + 1000)
    await dialog_is_free(stack)

    fires = stack.log.matching(
        "focus.event.inject", lambda i: i["inject_id"] == tea and i["status"] == "fired"
    )
    assert len(fires) == 1, (sharing, fires)
    turns = {
        e.body["turn_id"]
        for e in stack.log.matching("bridge.event.turn", lambda t: t["inject_id"] == tea, after=fired)
    }
    assert len(turns) == 1, (sharing, turns)
    # Each announcement reached the model once (the bridge dedups a retried run_inject).
    assert prompts_with(stack, TEA) == 1, (sharing, stack.sent("conversation.item.create"))
    assert prompts_with(stack, LONG) == 1, (sharing, stack.sent("conversation.item.create"))

    heard = Timeline(await stack.speaker(), references(LONG, TEA), book.pcm)
    order = heard.order()
    assert order.count(TEA) == 1 and order[-1] == BOOK, heard.describe()
    assert order.index(TEA) > order.index(LONG), heard.describe()
    assert heard.heard_ms(TEA) >= spoken_ms(TEA) - 100, heard.describe()
    # The book goes on from where the announcements paused it.
    before = heard.book_between(0, heard.first(LONG))
    after = heard.book_between(heard.last(TEA), len(heard.blocks))
    gap = after[0].book_s - before[-1].book_s
    assert 0.0 < gap <= 0.045, (gap, heard.describe())
