"""A 3-node nats-server cluster with operator-mode auth: messages and requests
cross nodes, and a client whose node is SIGKILLed carries on on another seed."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from nats.aio.msg import Msg

from cluster.conftest import Clients, answered, reaches
from huxley_cli.auth import AuthStore
from huxley_cli.natsserver import cluster as cluster_module
from huxley_cli.natsserver import free_port
from huxley_cli.natsserver.cluster import Cluster
from huxley_runtime.bus import settle
from huxley_wire.permissions import Role, service_identity, skill_identity
from huxley_wire.subjects import Subjects
from support.waiting import until


async def serve_echo(nc: object, subject: str) -> None:
    async def answer(msg: Msg) -> None:
        await msg.respond(b"ok:" + msg.data)

    await nc.subscribe(subject, cb=answer)  # type: ignore[attr-defined]
    await settle(nc)  # type: ignore[arg-type]


async def test_a_publish_on_node_1_reaches_a_subscriber_on_node_3(
    cluster: Cluster, clients: Clients, cluster_site: str
) -> None:
    s = Subjects(cluster_site)
    focus = await clients.connect(service_identity(Role.FOCUS, cluster_site), cluster.specs[0].url)
    audio = await clients.connect(service_identity(Role.AUDIO_IO, cluster_site), cluster.specs[2].url)
    assert focus.connected_url is not None and audio.connected_url is not None
    assert (focus.connected_url.port, audio.connected_url.port) == (
        cluster.specs[0].client_port,
        cluster.specs[2].client_port,
    )
    assert await reaches(focus, audio, s.focus_event("activity")) == b"hello"


async def test_a_request_is_answered_across_nodes(
    cluster: Cluster, clients: Clients, cluster_site: str
) -> None:
    s = Subjects(cluster_site)
    storage = await clients.connect(service_identity(Role.STORAGE, cluster_site), cluster.specs[2].url)
    timers = await clients.connect(skill_identity(cluster_site, "basic", ("timers",)), cluster.specs[0].url)
    await serve_echo(storage, s.storage_kv("basic", "timers"))
    # The reply goes to the skill's own inbox prefix, routed back to node 1.
    assert await answered(timers, s.storage_kv("basic", "timers"), b"get") == b"ok:get"


async def test_clients_of_a_killed_node_carry_on_through_another_seed(
    cluster: Cluster, clients: Clients, cluster_site: str
) -> None:
    s = Subjects(cluster_site)
    seeds = cluster.seed_urls
    focus = await clients.connect(service_identity(Role.FOCUS, cluster_site), seeds)
    audio = await clients.connect(service_identity(Role.AUDIO_IO, cluster_site), seeds)
    await serve_echo(focus, s.focus_rpc_of("audio-io"))
    assert await answered(audio, s.focus_rpc_of("audio-io"), b"snapshot") == b"ok:snapshot"
    # Kill the node the audio-io client is on (focus may be on it too).
    assert audio.connected_url is not None
    victim = cluster.index_of_port(audio.connected_url.port or 0)
    cluster.servers[victim].kill()

    def moved() -> bool:
        url = audio.connected_url
        return audio.is_connected and url is not None and url.port != cluster.specs[victim].client_port

    await until(moved, 15, "the audio-io client to reconnect to another node")
    # Its requests are answered again, and its subscriptions live on the new node.
    assert await answered(audio, s.focus_rpc_of("audio-io"), b"again") == b"ok:again"
    assert await reaches(focus, audio, s.focus_event("activity")) == b"hello"
    assert not any("violation" in e.lower() for e in clients.errors.get("audio-io", []))


def test_a_port_taken_before_its_node_binds_it_starts_the_cluster_on_new_ports(
    tmp_path: Path, auth: AuthStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`free_port` only finds a port free: anyone may take it before the node
    binds it (here a socket of ours, in the suite an outgoing connection's
    ephemeral port). The cluster then starts again on fresh ports."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))  # bound, not listening: as a connection's own port
        busy = taken.getsockname()[1]
        handed: list[int] = []

        def first_one_taken(host: str = "127.0.0.1") -> int:
            port = busy if not handed else free_port(host)
            handed.append(port)
            return port

        monkeypatch.setattr(cluster_module, "free_port", first_one_taken)
        started = cluster_module.start_cluster(tmp_path / "cluster", auth.config_path)
        try:
            assert handed.count(busy) == 1 and len(handed) == 2 * 6  # two plans of 3 x (client, route)
            assert busy not in {p for s in started.specs for p in (s.client_port, s.route_port)}
            assert all(
                server.process is not None and server.process.poll() is None for server in started.servers
            )
        finally:
            started.stop()
