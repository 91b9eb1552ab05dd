"""A whole voice turn through a satellite: the hub (three nodes) runs storage,
focus, the skill-host and the bridge against the simulator; the room device
runs only audio-io, on a leaf nats-server joined to the hub with the site's
satellite creds (auth on at the hub, the leaf's link limited to its site).

A press on the device is answered on the device's speaker (an answer and a
book); the next press stops the book; SIGKILL in the middle of the model's
answer of either the leaf server (then started again: the device's own bus
and its link to the hub both gone) or the hub node the leaf is connected to
(the leaf moves to another node) ends that turn with a status, and the
next press is answered, with nobody doing anything in between."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from e2e.conftest import Book
from e2e.speaker import BOOK, Timeline
from e2e.test_e2e import ACK, HELLO, LONG, book_playing, dialog_is_free, references, spoken_ms

from cluster.conftest import Clients, jetstream_ready
from cluster.whole_stack import ClusterStack, start_satellite, start_stack
from huxley_cli.natsserver.cluster import Cluster
from huxley_realtime_sim import SimServer
from huxley_wire.permissions import Role, service_identity
from huxley_wire.subjects import focus_kv_bucket
from support.waiting import until

pytestmark = pytest.mark.slow


@pytest.fixture(params=["leaf server", "hub node"])
def cut(request: pytest.FixtureRequest) -> str:
    """What dies mid-answer: the device's leaf server (started again), or
    the hub node its leaf connection is on (the leaf moves to another)."""
    return str(request.param)


@pytest.fixture
async def stack(
    cluster: Cluster,
    clients: Clients,
    cluster_site: str,
    tmp_path: Path,
    sim: SimServer,
    book: Book,
) -> AsyncIterator[ClusterStack]:
    """The stack with audio-io on the device; watched from a hub node the
    leaf is not connected to (the "hub node" case kills that one)."""
    probe = await clients.connect(service_identity(Role.FOCUS, cluster_site), cluster.seed_urls)
    await jetstream_ready(probe, focus_kv_bucket(cluster_site))  # focus keeps three copies
    device = start_satellite(cluster, clients, cluster_site, tmp_path)
    try:
        running = await start_stack(
            cluster, clients, cluster_site, tmp_path, sim, book, satellite=device, target="satellite"
        )
        try:
            yield running
        finally:
            await running.stop()
    finally:
        device.server.stop()


async def press_once_listening(stack: ClusterStack, key: str) -> None:
    """Press as soon as the device's press hook is back on its leaf server
    (no responders: nothing was pressed, so asking again is safe)."""

    async def pressed() -> bool:
        try:
            await stack.press(key)
        except nats.errors.NoRespondersError:
            return False
        return True

    await until(pressed, 30, f"a press of {key} on the satellite")


async def test_a_satellite_turn_completes_and_survives_its_leaf_link_cut(
    cluster: Cluster, stack: ClusterStack, book: Book, cut: str
) -> None:
    assert stack.satellite is not None
    mark = stack.log.mark
    await stack.press("3")
    await stack.turn_ended(after=mark)
    # The device plays the book and says so across the leaf.
    book_id = await book_playing(stack, after=mark, ms=1000)

    # A press on the device stops the book (the bridge interrupts for it:
    # the satellite itself asks focus for nothing but snapshots).
    second = stack.log.mark
    await stack.press("2")
    stopped = await stack.log.wait(
        "focus.event.activity", lambda a: a["activity_id"] == book_id and a["state"] == "none", after=second
    )
    assert stopped["reason"] == "user_ptt"
    speaking = await stack.log.wait("bridge.event.turn", lambda t: t["phase"] == "speaking", after=second)
    await stack.played_at_least(speaking["activity_id"], 500, after=second)
    if cut == "leaf server":
        stack.satellite.kill()  # SIGKILL: the device's bus and its link to the hub
        stack.satellite.start()
    else:  # SIGKILL of the hub node the leaf is on: it moves to another seed
        cluster.servers[stack.nodes["satellite"]].kill()
    over = await stack.log.wait(
        "bridge.event.turn",
        lambda t: t["turn_id"] == speaking["turn_id"] and t["phase"] in ("ended", "cancelled"),
        after=second,
        timeout=30,
    )
    await dialog_is_free(stack)

    third = stack.log.mark
    await press_once_listening(stack, "0")
    last = await stack.turn_ended(after=third)
    await stack.played_at_least(last["activity_id"], spoken_ms(HELLO) - 100, after=third)
    await dialog_is_free(stack)

    heard = Timeline(await stack.speaker(), references(ACK, LONG, HELLO), book.pcm)
    assert heard.order()[:3] == [ACK, BOOK, LONG], (over, heard.describe())
    assert heard.order()[-1] == HELLO, (over, heard.describe())
    assert heard.heard_ms(HELLO) >= spoken_ms(HELLO) - 100, heard.describe()
