"""Fixtures every test can use: one real nats-server (JetStream on, random
free port, temporary store) for the whole session, a connected client, and a
fresh site token per test so tests sharing the server never see each other's
traffic.

Authentication is on: the server runs the operator-mode config an AuthStore
writes (tests/support/auth.py) and refuses anonymous clients; `nc` is the
test harness's identity at the test's site, and every service a test starts
connects as its own identity."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from nats.aio.client import Client

import support.auth
from huxley_cli.auth import AuthStore
from huxley_cli.natsserver import NatsServer
from huxley_runtime.logging import configure_logging
from huxley_runtime.settings import HuxleySettings
from huxley_wire.permissions import Role
from support.auth import SiteAuth

configure_logging("tests", "test", json=False, level=os.environ.get("HUXLEY_TEST_LOG_LEVEL", "warning"))

# CI replays the same hypothesis examples on every run, so its verdict is about
# the change and not the draw; on a developer's machine hypothesis explores
# (and keeps what it found in .hypothesis/), which is where new cases come from.
hypothesis_settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


@pytest.fixture(scope="session")
def auth_store(tmp_path_factory: pytest.TempPathFactory) -> AuthStore:
    """The keys and creds of the test session."""
    store = AuthStore.of(tmp_path_factory.mktemp("auth"))
    store.init(int(time.time()))
    support.auth.STORE = store
    return store


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory, auth_store: AuthStore) -> Iterator[NatsServer]:
    store = tmp_path_factory.mktemp("nats")
    server = NatsServer(
        store_dir=store / "js",
        log_file=store / "nats.log",
        config_file=auth_store.config_path,
        trace=bool(os.environ.get("HUXLEY_NATS_TRACE")),
    ).start()
    yield server
    server.stop()


@pytest.fixture
def nats_url(nats_server: NatsServer) -> str:
    return nats_server.url


@pytest.fixture
def site() -> str:
    return f"t{secrets.token_hex(4)}"


@pytest.fixture
def auth(site: str, auth_store: AuthStore) -> SiteAuth:
    """Identities at the test's site: `auth.fields(role)` for settings,
    `auth.env(role)` for a process, `auth.connect(url, role)` for a client."""
    return SiteAuth(site, auth_store)


@pytest.fixture
async def nc(nats_url: str, auth: SiteAuth) -> AsyncIterator[Client]:
    """The test harness: it plays the peers a test fakes, at the test's site."""
    client = await auth.connect(nats_url, Role.HARNESS)
    yield client
    await client.drain()


@pytest.fixture
def settings(nats_url: str, site: str, tmp_path: Path) -> HuxleySettings:
    """Base settings for a service under test; copy with `.model_copy(update=...)`
    or build a service-specific settings class from `base_env`. No creds:
    `running()` gives the service its own (or add `**auth.fields(role)`)."""
    return HuxleySettings(
        nats_url=nats_url,
        site=site,
        data_dir=tmp_path / "data",
        personas_dir=Path(__file__).resolve().parents[1] / "personas",
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
def base_env(nats_url: str, site: str, tmp_path: Path) -> dict[str, str]:
    """Environment for a service run as a subprocess against the test server
    (`ServiceProcess` adds the service's own creds; else `auth.env(role)`)."""
    return {
        "HUXLEY_NATS_URL": nats_url,
        "HUXLEY_SITE": site,
        "HUXLEY_DATA_DIR": str(tmp_path / "data"),
        "HUXLEY_PERSONAS_DIR": str(Path(__file__).resolve().parents[1] / "personas"),
        "HUXLEY_LOG_JSON": "1",
    }
