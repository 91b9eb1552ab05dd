"""Fixtures for the cluster and leaf tests: their own nats-servers (never the
session's single server), all in operator mode with creds from `AuthStore`,
ports from free_port."""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from e2e.conftest import RULES, Book, make_book
from nats.aio.client import Client
from nats.aio.msg import Msg

from huxley_cli.auth import AuthStore
from huxley_cli.natsserver.cluster import Cluster, start_cluster
from huxley_realtime_sim import SimServer
from huxley_realtime_sim.rules import load_rules
from huxley_realtime_sim.voice import ToneVoice
from huxley_runtime.bus import settle
from huxley_wire.permissions import Identity, grant_for
from support.waiting import until


class Clients:
    """Connections as identities; closes them all at the end."""

    def __init__(self, store: AuthStore) -> None:
        self.store = store
        self.conns: list[Client] = []
        self.errors: dict[str, list[str]] = {}

    def creds(self, identity: Identity) -> Path:
        return self.store.ensure(identity, int(time.time()))

    async def connect(
        self, identity: Identity, urls: str, *, reconnect: bool = True, **options: object
    ) -> Client:
        errors = self.errors.setdefault(identity.name, [])

        async def on_error(exc: Exception) -> None:
            errors.append(str(exc))

        nc = await nats.connect(
            [u for u in urls.split(",") if u],
            user_credentials=str(self.creds(identity)),
            inbox_prefix=grant_for(identity).inbox_prefix,
            name=identity.name,
            error_cb=on_error,
            allow_reconnect=reconnect,
            max_reconnect_attempts=-1 if reconnect else 0,
            reconnect_time_wait=0.2,
            connect_timeout=2,
            **options,  # type: ignore[arg-type]
        )
        self.conns.append(nc)
        return nc

    async def close(self) -> None:
        for nc in self.conns:
            if not nc.is_closed:
                await nc.close()


@pytest.fixture
def auth(tmp_path: Path) -> AuthStore:
    store = AuthStore.of(tmp_path / "data")  # today's subjects too: the services use them
    store.init(int(time.time()))
    return store


@pytest.fixture
async def clients(auth: AuthStore) -> AsyncIterator[Clients]:
    made = Clients(auth)
    yield made
    await made.close()


@pytest.fixture(scope="session")
def book(tmp_path_factory: pytest.TempPathFactory) -> Book:
    """tests/e2e's book (a chirp), for the whole-stack tests."""
    return make_book(tmp_path_factory.mktemp("book"))


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    """The Realtime simulator with tests/e2e's rules, in this process."""
    async with SimServer(load_rules(RULES), voice=ToneVoice()) as server:
        yield server


@pytest.fixture
def cluster_site() -> str:
    return f"c{secrets.token_hex(4)}"


@pytest.fixture
def cluster(tmp_path: Path, auth: AuthStore) -> Iterator[Cluster]:
    running = start_cluster(tmp_path / "cluster", auth.config_path, leaf=True, monitor=True)
    yield running
    running.stop()


async def jetstream_ready(nc: Client, probe: str) -> None:
    """The cluster can place a three-replica bucket: the meta leader is elected
    and every peer is current (the account answering is not enough: a busy
    machine answers before the peers are placeable). `probe`: a bucket `nc`
    may make (focus's rights reach its own site's bucket only); deleted after."""
    js = nc.jetstream(timeout=2)

    async def placeable() -> bool:
        try:
            await js.create_key_value(bucket=probe, replicas=3)
        except Exception:
            return False
        with contextlib.suppress(Exception):
            await js.delete_key_value(probe)
        return True

    await until(placeable, 60, "a three-replica JetStream placement")


async def reaches(sender: Client, receiver: Client, subject: str) -> bytes:
    """Publish on `sender` until `receiver` (subscribed on another node) gets
    one: interest crosses routes asynchronously, with no flush for it."""
    got: list[bytes] = []

    async def take(msg: Msg) -> None:
        got.append(msg.data)

    sub = await receiver.subscribe(subject, cb=take)
    await settle(receiver)

    async def arrived() -> bool:
        await sender.publish(subject, b"hello")
        await sender.flush()
        return bool(got)

    try:
        await until(arrived, 15, f"{subject} to cross the cluster")
    finally:
        await sub.unsubscribe()
    return got[0]


async def answered(nc: Client, subject: str, payload: bytes) -> bytes:
    """A request retried while the responder's interest is still crossing."""
    replies: list[bytes] = []

    async def ask() -> bool:
        try:
            msg = await nc.request(subject, payload, timeout=1)
        except Exception:
            return False
        replies.append(msg.data)
        return True

    await until(ask, 15, f"an answer on {subject}")
    return replies[0]
