"""A NATS cluster: N nats-server nodes joined by routes, JetStream clustered
(each node its own `server_name` and store, one cluster name), every node
trusting the same operator-mode auth config (`huxley_cli.auth`).

Routes carry no auth of their own: they listen on loopback (tests, one host)
or on a private network the home controls; a route port open to strangers
would let them join the cluster. Clients get every node's URL (`seed_urls`)
and move to another node when theirs dies.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from huxley_cli.natsserver import NatsServer, bundled_nats_server, free_port, on_fresh_ports

CLUSTER_NAME = "huxley"


@dataclass(frozen=True, slots=True)
class NodeSpec:
    name: str
    host: str
    client_port: int
    route_port: int
    store_dir: Path
    leaf_port: int | None = None  # accepts satellites (leaf nodes) when set
    monitor_port: int | None = None  # nats-server's HTTP monitoring (/connz: who is on it)

    @property
    def route_url(self) -> str:
        return f"nats-route://{self.host}:{self.route_port}"

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.client_port}"

    @property
    def monitor_url(self) -> str | None:
        return None if self.monitor_port is None else f"http://{self.host}:{self.monitor_port}"


def node_config(node: NodeSpec, peers: list[NodeSpec], auth: str | None, cluster: str = CLUSTER_NAME) -> str:
    """One node's nats-server config (pure): itself, routes to the others, and
    the shared auth text (`auth/nats-server.conf`) appended as is."""
    routes = ", ".join(json.dumps(p.route_url) for p in peers if p.name != node.name)
    lines = [
        "# Written by huxley (a cluster node); do not edit.",
        f"server_name: {json.dumps(node.name)}",
        f"listen: {json.dumps(f'{node.host}:{node.client_port}')}",
        f"jetstream: {{ store_dir: {json.dumps(str(node.store_dir))} }}",
        "cluster: {",
        f"  name: {json.dumps(cluster)}",
        f"  listen: {json.dumps(f'{node.host}:{node.route_port}')}",
        f"  routes: [{routes}]",
        "}",
    ]
    if node.leaf_port is not None:
        lines.append(f"leafnodes: {{ listen: {json.dumps(f'{node.host}:{node.leaf_port}')} }}")
    if node.monitor_port is not None:
        lines.append(f"http: {json.dumps(f'{node.host}:{node.monitor_port}')}")
    text = "\n".join(lines) + "\n"
    return text + ("\n" + auth if auth else "")


def plan(
    root: Path,
    size: int = 3,
    host: str = "127.0.0.1",
    leaf: bool = False,
    prefix: str = "n",
    monitor: bool = False,
) -> list[NodeSpec]:
    """Node specs with free ports, names n1..nN, stores under `root/<name>`."""
    return [
        NodeSpec(
            name=f"{prefix}{i}",
            host=host,
            client_port=free_port(host),
            route_port=free_port(host),
            store_dir=root / f"{prefix}{i}" / "js",
            leaf_port=free_port(host) if leaf else None,
            monitor_port=free_port(host) if monitor else None,
        )
        for i in range(1, size + 1)
    ]


@dataclass
class Cluster:
    """Running nodes; `servers[i]` restarts on the same ports and store."""

    specs: list[NodeSpec]
    servers: list[NatsServer] = field(default_factory=list)

    @property
    def seed_urls(self) -> str:
        """Every node's URL, comma-separated (HUXLEY_NATS_URL takes this)."""
        return ",".join(spec.url for spec in self.specs)

    @property
    def leaf_urls(self) -> list[str]:
        return [f"nats-leaf://{s.host}:{s.leaf_port}" for s in self.specs if s.leaf_port is not None]

    def index_of(self, name: str) -> int:
        return next(i for i, spec in enumerate(self.specs) if spec.name == name)

    def index_of_port(self, port: int) -> int:
        return next(i for i, spec in enumerate(self.specs) if spec.client_port == port)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def start_cluster(
    root: Path,
    auth_config: Path | None = None,
    size: int = 3,
    leaf: bool = False,
    binary: Path | None = None,
    timeout_s: float = 15.0,
    monitor: bool = False,
) -> Cluster:
    """Write each node's config under `root/<name>/` and start them all; a
    node listens before its peers do, and routes retry until they connect.
    A free port can be taken by someone else before its node binds it (an
    outgoing connection's ephemeral port): then the cluster starts again on
    new ports (`on_fresh_ports`)."""

    def on_free_ports() -> Cluster:
        specs = plan(root, size, leaf=leaf, monitor=monitor)
        for log in root.glob("*/nats.log*"):  # this attempt's logs only
            log.unlink()
        return _start_nodes(root, specs, auth_config, binary, timeout_s)

    return on_fresh_ports(on_free_ports, port_taken=lambda: _port_taken(root))


def _port_taken(root: Path) -> bool:
    """A node's log says one of its ports was in use."""
    for log in root.glob("*/nats.log*"):
        with contextlib.suppress(OSError):
            if "address already in use" in log.read_text(errors="replace"):
                return True
    return False


def _start_nodes(
    root: Path, specs: list[NodeSpec], auth_config: Path | None, binary: Path | None, timeout_s: float
) -> Cluster:
    auth = auth_config.read_text() if auth_config is not None else None
    cluster = Cluster(specs)
    try:
        for spec in specs:
            config = root / spec.name / "nats-server.conf"
            config.parent.mkdir(parents=True, exist_ok=True)
            config.write_text(node_config(spec, specs, auth))
            config.chmod(0o600)  # it carries the account JWTs, as auth/ does
            server = NatsServer(
                store_dir=spec.store_dir,
                port=spec.client_port,
                host=spec.host,
                binary=binary or bundled_nats_server(),
                config_file=config,
                log_file=root / spec.name / "nats.log",
                jetstream_flags=False,
            )
            cluster.servers.append(server.start(timeout_s))
    except Exception:
        cluster.stop()
        raise
    return cluster
