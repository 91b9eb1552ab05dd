"""A database that cannot be reached: requests get `unavailable` at once (well
inside the clients' 2 s request timeout), health says degraded, and the
service recovers by itself when the database is back."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from nats.aio.client import Client

from huxley_runtime.rpc import request
from huxley_runtime.settings import HuxleySettings
from huxley_runtime.storage_client import SettingsClient
from huxley_storage.service import StorageService
from huxley_storage.settings import StorageSettings
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages.common import Health, HealthRequest
from huxley_wire.subjects import Subjects
from storage.conftest import served
from storage.private_pg import PrivatePostgres
from support.services import running


async def health(nc: Client, subjects: Subjects) -> Health:
    return await request(nc, subjects.health("storage"), HealthRequest())


async def recovered(nc: Client, subjects: Subjects, service: StorageService) -> None:
    """Wait for the service's probe to find the database again, then check
    that health says so (the timeout only bounds a failure)."""
    await asyncio.wait_for(service.store.available.wait(), 30)
    assert (await health(nc, subjects)).status == "ok"


async def assert_unavailable(kv: SettingsClient) -> None:
    """The request is answered (not timed out on the client) with `unavailable`."""
    with pytest.raises(WireError) as err:
        await kv.set_setting("during", "outage")
    assert err.value.code == ErrorCode.UNAVAILABLE, err.value
    assert "database" in err.value.message


def quick(settings: HuxleySettings, persona: str, **update: object) -> StorageSettings:
    return StorageSettings(
        **settings.model_dump(),
        storage_backups=False,
        storage_probe_interval_s=0.1,
        storage_personas=served(persona),
        _env_file=None,  # type: ignore[call-arg]
    ).model_copy(update=update)


async def test_sqlite_directory_that_cannot_be_used(nc, subjects, settings, persona):
    blocker = Path(settings.data_dir) / "storage" / persona
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a directory")  # like a volume that failed to mount
    kv = SettingsClient(nc, subjects, persona, "timers", deadline_s=0)
    async with running(StorageService, quick(settings, persona)) as service:
        await assert_unavailable(kv)
        report = await health(nc, subjects)
        assert report.status == "degraded" and persona in report.detail["unavailable"]
        # Another persona's database is fine meanwhile.
        await SettingsClient(nc, subjects, f"{persona}x", "timers", deadline_s=0).set_setting("k", "v")

        blocker.unlink()
        await recovered(nc, subjects, service)
        await kv.set_setting("after", "outage")
        assert await kv.get_setting("after") == "outage"
        assert persona in (await health(nc, subjects)).detail["databases_open"]


@pytest.fixture
def private_pg():
    server = PrivatePostgres().init()
    yield server
    server.destroy()


@pytest.mark.postgres
@pytest.mark.slow
async def test_postgres_down_at_start_and_mid_flight(nc, subjects, settings, persona, private_pg):
    kv = SettingsClient(nc, subjects, persona, "timers", deadline_s=0)
    async with running(StorageService, quick(settings, persona, storage_url=private_pg.url)) as service:
        # The server is not running yet: the service starts anyway, degraded.
        report = await health(nc, subjects)
        assert report.status == "degraded" and report.detail["backend"] == "postgresql"
        assert "postgresql" in report.detail["unavailable"]
        await assert_unavailable(kv)

        private_pg.start()
        await recovered(nc, subjects, service)
        await kv.set_setting("before", "crash")  # migrations ran on the way

        private_pg.stop("immediate")  # pooled connections die with it
        await assert_unavailable(kv)
        assert (await health(nc, subjects)).status == "degraded"

        private_pg.start()
        await recovered(nc, subjects, service)
        assert await kv.get_setting("before") == "crash"
        await kv.set_setting("after", "restart")
        assert await kv.list_settings() == [("after", "restart"), ("before", "crash")]


async def test_bad_requests_are_refused_before_the_database(nc, subjects, settings, persona):
    """Validation needs no database: bad input gets its own error even during an outage."""
    data = Path(settings.data_dir) / "storage"
    data.mkdir(parents=True)
    (data / persona).write_text("blocked")
    async with running(StorageService, quick(settings, persona)):
        subject = subjects.storage_kv(persona, "timers")
        reply = await nc.request(subject, json.dumps({"v": 1, "op": "get", "key": ""}).encode(), timeout=5)
        assert json.loads(reply.data)["error"]["code"] == "invalid"
    shutil.rmtree(data)
