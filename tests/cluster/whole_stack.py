"""tests/e2e's whole stack (storage, focus, a skill-host, the rig audio-io,
the realtime bridge, the simulator in this process) on the test's own
cluster: every hub service gets every seed URL and its own identity from the
cluster's AuthStore; audio-io runs either at the hub or on a satellite, a
leaf nats-server joined to the hub with the site's satellite creds.

Health goes through an observer (the satellite answers only the bridge's,
the observer's and the admin's inboxes across the leaf); presses go where
the press hook listens (the hub, or the satellite's leaf server).
"""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
from e2e.conftest import BRIDGE_TOOL_TIMEOUT_S, SKILLS, TOOLS, Book
from e2e.e2e_skills import install
from e2e.rig_audio import HARNESS_CREDS_ENV, press_subject
from e2e.stack import SERVICES, BusLog, Stack, copy_book, write_persona
from nats.aio.client import Client

from cluster.conftest import Clients
from huxley_cli.auth import AuthStore
from huxley_cli.identities import connection_env
from huxley_cli.natsserver import NatsServer
from huxley_cli.natsserver.cluster import Cluster
from huxley_cli.satellite_cmd import SatellitePlan, plan, start_leaf
from huxley_realtime_sim import SimServer, marker_pcm
from huxley_runtime.rpc import request
from huxley_wire.errors import WireError
from huxley_wire.messages.common import Health, HealthRequest
from huxley_wire.permissions import Identity, Role, harness_identity, satellite_identity
from huxley_wire.subjects import Subjects
from support.auth import SiteAuth
from support.services import ServiceProcess
from support.waiting import WAIT_S, until

TESTS = Path(__file__).resolve().parents[1]
STACK_WAIT_S = 60.0  # bring-up on a busy two-core machine: three nodes and six processes


@dataclass
class ClusterStack(Stack):
    observer: Client | None = None
    press_nc: Client | None = None  # where the press hook listens
    satellite: NatsServer | None = None  # the leaf server audio-io is on, if any
    watcher: int = 0  # the node of the harness and the observer
    target: str = "realtime-bridge"  # the service whose node a test may kill (not the watcher's)
    nodes: dict[str, int] = field(default_factory=dict)  # hub service -> its first node

    async def health(self, service: str) -> Health | None:
        assert self.observer is not None
        try:
            return await request(self.observer, self.subjects.health(service), HealthRequest(), timeout=1.0)
        except WireError:
            return None

    async def press(self, key: str, *, hold_ms: int = 400) -> int:
        assert self.press_nc is not None
        pcm = marker_pcm(key, lead_ms=100, tail_ms=max(60, hold_ms - 240))
        reply = await self.press_nc.request(press_subject(self.site), pcm, timeout=WAIT_S)
        fed_ms: int = json.loads(reply.data)["fed_ms"]
        return fed_ms


def identities(site: str, store: AuthStore, persona: Path) -> dict[str, Identity]:
    """Who each hub service runs as (skill-host: the persona's skills)."""
    auth = SiteAuth(site, store)
    return {
        "storage": auth.identity(Role.STORAGE),
        "focus": auth.identity(Role.FOCUS),
        "skill-host": auth.identity(Role.SKILL, persona=str(persona), personas_dir=persona.parent),
        "audio-io": auth.identity(Role.AUDIO_IO),
        "realtime-bridge": auth.identity(Role.BRIDGE),
    }


async def start_stack(
    cluster: Cluster,
    clients: Clients,
    site: str,
    root: Path,
    sim: SimServer,
    book: Book,
    *,
    satellite: Satellite | None = None,
    target: str = "realtime-bridge",
) -> ClusterStack:
    """The stack up and ready: services on the seeds (audio-io on `satellite`
    when given); the harness and the observer then on the node with the
    fewest of them and never `target`'s (`watcher`), so a test can kill
    that service's node and still see everything."""
    store = clients.store
    dist = install(root / "site-packages")
    persona = write_persona(root / "persona" / "e2e.yaml")
    harness = harness_identity(site)
    env = {
        "HUXLEY_NATS_URL": cluster.seed_urls,
        "HUXLEY_SITE": site,
        "HUXLEY_DATA_DIR": str(root / "data"),
        "HUXLEY_PERSONAS_DIR": str(TESTS.parent / "personas"),
        "HUXLEY_LOG_JSON": "1",
        "HUXLEY_PERSONA": str(persona),
        "PYTHONPATH": f"{dist}:{TESTS}",
        "HUXLEY_LOG_LEVEL": "info",
        "HUXLEY_STORAGE_BACKUPS": "0",
        "HUXLEY_STORAGE_SQLITE_SYNCHRONOUS": "NORMAL",
        "HUXLEY_SCHEMA_WAIT_S": "0.2",
        "HUXLEY_FOCUS_KV_REPLICAS": "3",
        HARNESS_CREDS_ENV: str(clients.creds(harness)),
        "HUXLEY_AUDIO_BACKEND": "file",
        "HUXLEY_AUDIO_FILE_OUT": str(root / "speaker.wav"),
        "HUXLEY_REALTIME_URL": sim.url,
        "HUXLEY_TOOL_TIMEOUT_S": str(BRIDGE_TOOL_TIMEOUT_S),
    }
    now = int(time.time())
    who = identities(site, store, persona)
    overrides = {name: connection_env(store, identity, now) for name, identity in who.items()}
    hub_services = list(who)
    if satellite is not None:
        # As `huxley satellite` runs it: the leaf's URL, the satellite creds'
        # inbox (the prefix the hub lets back in), no creds; no harness.
        overrides["audio-io"] = {**satellite.plan.audio_env(satellite.server.url), HARNESS_CREDS_ENV: ""}
        hub_services.remove("audio-io")
        hub_services.append("satellite")  # the leaf connection, on one hub node
    copy_book(book.path, root / "data")

    def all_connected() -> dict[str, int] | None:
        found = placement(cluster, hub_services)
        return found if len(found) == len(hub_services) else None

    procs = start_services(env, overrides, root)
    try:
        where = await until(all_connected, STACK_WAIT_S, "every hub service connected")
        watcher = min(
            range(len(cluster.specs)),
            key=lambda n: (where[target] == n, sorted(where.values()).count(n)),
        )
        urls = [cluster.specs[watcher].url] + [s.url for i, s in enumerate(cluster.specs) if i != watcher]
        nc = await clients.connect(harness, ",".join(urls), dont_randomize=True)
        observer_identity = Identity(Role.OBSERVER, site, "observer")
        observer = await clients.connect(observer_identity, ",".join(urls), dont_randomize=True)
        press_nc = nc
        if satellite is not None:
            errors = clients.errors.setdefault("device", [])

            async def on_error(exc: Exception) -> None:
                errors.append(str(exc))  # the leaf restarting, in the tests that do it

            press_nc = await nats.connect(
                satellite.server.url, reconnect_time_wait=0.2, max_reconnect_attempts=-1, error_cb=on_error
            )
            clients.conns.append(press_nc)
        log = await BusLog().start(nc, Subjects(site))
        stack = ClusterStack(nc, site, root, sim, env, log, procs)
        stack.observer, stack.press_nc, stack.satellite = observer, press_nc, satellite and satellite.server
        stack.watcher, stack.target, stack.nodes = watcher, target, where
        await stack.wait_ready(tools=TOOLS, skills=SKILLS)
    except BaseException as exc:
        for proc in procs.values():
            proc.kill()
        if isinstance(exc, AssertionError):
            tails = "\n".join(f"--- {name}\n{p.output()[-2000:]}" for name, p in procs.items())
            raise AssertionError(f"{exc}\n{tails}") from None
        raise
    return stack


def start_services(
    env: dict[str, str], overrides: dict[str, dict[str, str]], root: Path
) -> dict[str, ServiceProcess]:
    procs: dict[str, ServiceProcess] = {}
    for name, module in SERVICES.items():
        log = root / "logs" / f"{name}.log"
        # Each one's creds are in `overrides` (the cluster's store, not the session's).
        procs[name] = ServiceProcess(module, {**env, **overrides.get(name, {})}, log, identity=False).start()
    return procs


@dataclass
class Satellite:
    plan: SatellitePlan
    server: NatsServer


def start_satellite(cluster: Cluster, clients: Clients, site: str, root: Path) -> Satellite:
    """The room device's leaf server, joined to every hub node with the
    site's satellite creds, planned and started as `huxley satellite --hub
    a,b,c` does (its audio-io is started with the stack)."""
    creds = clients.creds(satellite_identity(site))
    p = plan(",".join(cluster.leaf_urls), creds, site, root / "device")
    return Satellite(p, start_leaf(p))


def clients_on(cluster: Cluster, node: int) -> list[dict[str, Any]]:
    """The clients (/connz) and leaf nodes (/leafz) of one node, each with its `name`."""
    url = cluster.specs[node].monitor_url
    assert url is not None, "start the cluster with monitor=True"
    found: list[dict[str, Any]] = []
    for path, key in (("connz?limit=1024", "connections"), ("leafz", "leafs")):
        with urllib.request.urlopen(f"{url}/{path}", timeout=5) as reply:
            found += json.load(reply).get(key) or []
    return found


def placement(cluster: Cluster, names: list[str]) -> dict[str, int]:
    """The node each named client or leaf node (`satellite-<site>`) is on."""
    found: dict[str, int] = {}
    for node, server in enumerate(cluster.servers):
        if server.process is None:
            continue
        for conn in clients_on(cluster, node):
            name = conn.get("name") or ""
            for wanted in names:
                if name == wanted or name.startswith(f"{wanted}-"):
                    found[wanted] = node
    return found
