"""A satellite's leaf node joined to the cluster with site-limited creds:
requests, replies and publishes cross both ways for its site, another
site's subjects do not cross, and traffic resumes after the hub restarts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from cluster.conftest import Clients, answered, reaches
from huxley_cli.natsserver import NatsServer
from huxley_cli.natsserver.cluster import Cluster
from huxley_cli.natsserver.leaf import leaf_server
from huxley_runtime.bus import settle
from huxley_wire.permissions import Role, grant_for, satellite_identity, service_identity
from huxley_wire.subjects import Subjects
from support.waiting import until

OTHER_SITE = "elsewhere"


async def serve_echo(nc: Client, subject: str) -> None:
    async def answer(msg: Msg) -> None:
        await msg.respond(b"ok:" + msg.data)

    await nc.subscribe(subject, cb=answer)
    await settle(nc)


@pytest.fixture
def leaf(cluster: Cluster, clients: Clients, cluster_site: str, tmp_path: Path) -> Iterator[NatsServer]:
    creds = clients.creds(satellite_identity(cluster_site))
    # One hub node only, so restarting it is the hub going away.
    server = leaf_server(tmp_path / "leaf", f"sat-{cluster_site}", cluster.leaf_urls[:1], creds).start()
    yield server
    server.stop()


@pytest.fixture
async def on_leaf(leaf: NatsServer, cluster_site: str) -> AsyncIterator[Client]:
    """The room's audio-io, as a client of the leaf (no creds of its own: the
    leaf's loopback port is the satellite's; its inbox is the satellite's)."""
    nc = await nats.connect(
        leaf.url,
        inbox_prefix=grant_for(satellite_identity(cluster_site)).inbox_prefix,
        reconnect_time_wait=0.2,
        max_reconnect_attempts=-1,
    )
    yield nc
    await nc.close()


async def test_a_leaf_client_talks_with_the_hub_for_its_site(
    cluster: Cluster, clients: Clients, cluster_site: str, on_leaf: Client
) -> None:
    s = Subjects(cluster_site)
    focus = await clients.connect(service_identity(Role.FOCUS, cluster_site), cluster.specs[1].url)
    bridge = await clients.connect(service_identity(Role.BRIDGE, cluster_site), cluster.specs[2].url)
    await serve_echo(focus, s.focus_rpc_of("satellite"))
    # leaf -> hub request, the reply back into the leaf
    assert await answered(on_leaf, s.focus_rpc_of("satellite"), b"snapshot") == b"ok:snapshot"
    # hub -> leaf request (the bridge clears audio-io), the reply out of the leaf
    await serve_echo(on_leaf, s.audio_rpc())
    assert await answered(bridge, s.audio_rpc(), b"clear") == b"ok:clear"
    # publishes both ways
    assert await reaches(on_leaf, bridge, s.audio_played()) == b"hello"
    assert await reaches(bridge, on_leaf, s.bridge_event("session")) == b"hello"


async def test_the_leaf_cannot_reach_another_sites_subjects(
    cluster: Cluster, clients: Clients, cluster_site: str, on_leaf: Client
) -> None:
    mine, other = Subjects(cluster_site), Subjects(OTHER_SITE)
    other_focus = await clients.connect(service_identity(Role.FOCUS, OTHER_SITE), cluster.specs[1].url)
    other_bridge = await clients.connect(service_identity(Role.BRIDGE, OTHER_SITE), cluster.specs[1].url)
    bridge = await clients.connect(service_identity(Role.BRIDGE, cluster_site), cluster.specs[1].url)
    await serve_echo(other_focus, other.focus_rpc_of("satellite"))
    # A positive control first: the leaf is up and this site's traffic crosses.
    assert await reaches(on_leaf, bridge, mine.audio_played()) == b"hello"
    with pytest.raises(nats.errors.NoRespondersError):
        await on_leaf.request(other.focus_rpc_of("satellite"), b"snapshot", timeout=2)

    # Its mic does not reach the other room's bridge; the other room's speaker
    # audio does not reach the leaf. Each denied message is followed by an
    # allowed one on the same path, so its absence is not a matter of time.
    other_mic: list[bytes] = []
    leaf_heard: list[str] = []

    async def mic(msg: Msg) -> None:
        other_mic.append(msg.data)

    async def heard(msg: Msg) -> None:
        leaf_heard.append(msg.subject)

    await other_bridge.subscribe(other.audio_mic_assistant(), cb=mic)
    await settle(other_bridge)
    await on_leaf.subscribe(other.audio_out_of("bridge", "tts"), cb=heard)
    await on_leaf.subscribe(mine.audio_out_of("bridge", "tts"), cb=heard)
    await settle(on_leaf)
    await on_leaf.publish(other.audio_mic_assistant(), b"secret")
    assert await reaches(on_leaf, bridge, mine.audio_played()) == b"hello"
    assert other_mic == []

    async def mine_arrived() -> bool:
        await other_bridge.publish(other.audio_out_of("bridge", "tts"), b"x")
        await bridge.publish(mine.audio_out_of("bridge", "tts"), b"x")
        await bridge.flush()
        return mine.audio_out_of("bridge", "tts") in leaf_heard

    await until(mine_arrived, 15, "this site's audio on the leaf")
    assert other.audio_out_of("bridge", "tts") not in leaf_heard


async def test_the_leaf_reconnects_after_the_hub_restarts(
    cluster: Cluster, clients: Clients, cluster_site: str, on_leaf: Client
) -> None:
    s = Subjects(cluster_site)
    focus = await clients.connect(service_identity(Role.FOCUS, cluster_site), cluster.specs[1].url)
    await serve_echo(focus, s.focus_rpc_of("satellite"))
    assert await answered(on_leaf, s.focus_rpc_of("satellite"), b"before") == b"ok:before"
    hub = cluster.servers[0]
    hub.kill()
    hub.start()
    # The leaf reconnects by itself (to this node or, having learned them,
    # another); its local client never noticed.
    assert await answered(on_leaf, s.focus_rpc_of("satellite"), b"after") == b"ok:after"
    bridge = await clients.connect(service_identity(Role.BRIDGE, cluster_site), cluster.specs[2].url)
    assert await reaches(bridge, on_leaf, s.bridge_event("session")) == b"hello"
    assert on_leaf.is_connected
