"""Storage fixtures: every storage test runs on SQLite and on the real
PostgreSQL of the machine (`backend` param; PostgreSQL cases are marked
`postgres`). The PostgreSQL cases share one database made for this test
session and dropped at its end; each test isolates itself by using a persona
name of its own."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest
from nats.aio.client import Client

from huxley_runtime.settings import HuxleySettings
from huxley_runtime.storage_client import SchemaClient, SessionsClient, SettingsClient
from huxley_storage.service import StorageService
from huxley_storage.settings import StorageSettings
from huxley_wire.subjects import Subjects
from support.services import running

# The machine's server (trust auth); CI starts it through scripts/setup-system.sh.
PG_HOST = os.environ.get("HUXLEY_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("HUXLEY_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("HUXLEY_TEST_PG_USER", "postgres")


def pg_url(database: str, *, host: str = PG_HOST, port: int = PG_PORT) -> str:
    return f"postgresql+asyncpg://{PG_USER}@{host}:{port}/{database}"


async def create_database(name: str, *, host: str = PG_HOST, port: int = PG_PORT) -> None:
    try:
        conn = await asyncpg.connect(host=host, port=port, user=PG_USER, database="postgres", timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {host}:{port} ({exc}); start it with "
            "scripts/setup-system.sh, or deselect these cases with -m 'not postgres'"
        )
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(name: str, *, host: str = PG_HOST, port: int = PG_PORT) -> None:
    conn = await asyncpg.connect(host=host, port=port, user=PG_USER, database="postgres", timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def pg_database() -> AsyncIterator[str]:
    """A PostgreSQL database of this test session: its URL."""
    name = f"huxley_test_{secrets.token_hex(4)}"
    await create_database(name)
    yield pg_url(name)
    await drop_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def storage_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    return str(request.getfixturevalue("pg_database")) if backend == "postgresql" else None


@pytest.fixture
def persona() -> str:
    return f"p{secrets.token_hex(4)}"


def served(persona: str) -> str:
    """The personas a test's storage serves: its own, and a few derived from it
    that tests use as "another home"."""
    return ",".join([persona, f"{persona}x", *(f"{persona}{n}" for n in range(4))])


@pytest.fixture
def storage_settings(settings: HuxleySettings, storage_url: str | None, persona: str) -> StorageSettings:
    return StorageSettings(
        **settings.model_dump(),
        storage_url=storage_url,
        storage_backups=False,
        storage_personas=served(persona),
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
def storage_env(base_env: dict[str, str], storage_url: str | None, persona: str) -> dict[str, str]:
    """Environment for `python -m huxley_storage` on this test's backend."""
    env = {**base_env, "HUXLEY_STORAGE_BACKUPS": "0", "HUXLEY_STORAGE_PERSONAS": served(persona)}
    if storage_url:
        env["HUXLEY_STORAGE_URL"] = storage_url
    return env


@pytest.fixture
async def storage(storage_settings: StorageSettings) -> AsyncIterator[StorageService]:
    async with running(StorageService, storage_settings) as service:
        yield service


@pytest.fixture
def subjects(site: str) -> Subjects:
    return Subjects(site)


@pytest.fixture
def kv(nc: Client, subjects: Subjects, persona: str) -> SettingsClient:
    """The `timers` skill's settings, failing fast: tests want to see errors."""
    return SettingsClient(nc, subjects, persona, "timers", deadline_s=0)


@pytest.fixture
def schema(nc: Client, subjects: Subjects, persona: str) -> SchemaClient:
    return SchemaClient(nc, subjects, persona, "timers", deadline_s=0)


@pytest.fixture
def sessions(nc: Client, subjects: Subjects, persona: str) -> SessionsClient:
    return SessionsClient(nc, subjects, persona, deadline_s=0)
