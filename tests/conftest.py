"""Fixtures every test can use: one real nats-server (JetStream on, random
free port, temporary store) for the whole session, a connected client, and a
fresh site token per test so tests sharing the server never see each other's
traffic."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client

from huxley_cli.natsserver import NatsServer
from huxley_runtime.logging import configure_logging
from huxley_runtime.settings import HuxleySettings

configure_logging("tests", "test", json=False, level=os.environ.get("HUXLEY_TEST_LOG_LEVEL", "warning"))


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    store = tmp_path_factory.mktemp("nats")
    server = NatsServer(
        store_dir=store / "js", log_file=store / "nats.log", trace=bool(os.environ.get("HUXLEY_NATS_TRACE"))
    ).start()
    yield server
    server.stop()


@pytest.fixture
def nats_url(nats_server: NatsServer) -> str:
    return nats_server.url


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    client = await nats.connect(nats_url, name="test-client")
    yield client
    await client.drain()


@pytest.fixture
def site() -> str:
    return f"t{secrets.token_hex(4)}"


@pytest.fixture
def settings(nats_url: str, site: str, tmp_path: Path) -> HuxleySettings:
    """Base settings for a service under test; copy with `.model_copy(update=...)`
    or build a service-specific settings class from `base_env`."""
    return HuxleySettings(
        nats_url=nats_url,
        site=site,
        data_dir=tmp_path / "data",
        personas_dir=Path(__file__).resolve().parents[1] / "personas",
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
def base_env(nats_url: str, site: str, tmp_path: Path) -> dict[str, str]:
    """Environment for a service run as a subprocess against the test server."""
    return {
        "HUXLEY_NATS_URL": nats_url,
        "HUXLEY_SITE": site,
        "HUXLEY_DATA_DIR": str(tmp_path / "data"),
        "HUXLEY_PERSONAS_DIR": str(Path(__file__).resolve().parents[1] / "personas"),
        "HUXLEY_LOG_JSON": "1",
    }
