"""A nats-server trusting only the credentials `huxley_cli.auth` mints, and
raw nats-py clients per identity that record what the server refused."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Iterator

import nats
import pytest
from nats.aio.client import Client

from huxley_cli.auth import AuthStore
from huxley_cli.natsserver import NatsServer
from huxley_wire.permissions import Identity, grant_for
from support.waiting import until


class Conn:
    """One identity's connection; `errors` holds the server's refusals."""

    def __init__(self, identity: Identity, nc: Client, errors: list[str]) -> None:
        self.identity = identity
        self.nc = nc
        self.errors = errors

    async def refused(self, what: str, subject: str, *, prefix: bool = False) -> None:
        """Wait until the server reported a permission violation for `what`
        (publish, subscription) on `subject` (or a subject starting with it)."""
        wanted = f'permissions violation for {what} to "{subject}' + ("" if prefix else '"')
        await until(lambda: any(wanted.lower() in e.lower() for e in self.errors), timeout=5, what=wanted)

    def clean(self) -> bool:
        return not any("permissions violation" in e.lower() for e in self.errors)


class Bus:
    def __init__(self, server: NatsServer, store: AuthStore) -> None:
        self.server = server
        self.store = store
        self.conns: list[Client] = []

    async def connect(self, identity: Identity) -> Conn:
        path = self.store.ensure(identity, int(time.time()))
        errors: list[str] = []

        async def on_error(exc: Exception) -> None:
            errors.append(str(exc))

        nc = await nats.connect(
            self.server.url,
            user_credentials=str(path),
            inbox_prefix=grant_for(identity).inbox_prefix,
            error_cb=on_error,
            allow_reconnect=False,
            name=identity.name,
        )
        self.conns.append(nc)
        return Conn(identity, nc, errors)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NatsServer, AuthStore]]:
    root = tmp_path_factory.mktemp("secured")
    store = AuthStore.of(root / "data")
    config = store.init(int(time.time()))
    server = NatsServer(store_dir=root / "js", config_file=config, log_file=root / "nats.log").start()
    yield server, store
    server.stop()


@pytest.fixture
async def bus(secured: tuple[NatsServer, AuthStore]) -> AsyncIterator[Bus]:
    server, store = secured
    bus = Bus(server, store)
    yield bus
    for nc in bus.conns:
        if not nc.is_closed:
            await nc.close()


@pytest.fixture
def sec_site() -> str:
    return f"s{secrets.token_hex(4)}"
