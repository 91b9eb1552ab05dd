"""A skill's bus credentials reach its own namespace only.

The subject names the namespace (`storage.kv.<persona>.<skill>`), so a
nats-server authorization that lets user `timers` publish to its own
subject alone is enough: the server refuses its requests to the audiobooks
namespace before storage ever sees them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from pydantic import SecretStr

from huxley_cli.natsserver import NatsServer
from huxley_runtime.rpc import request
from huxley_runtime.storage_client import SettingsClient
from huxley_storage.service import StorageService
from huxley_storage.settings import StorageSettings
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages.storage import KvGet, KvSet
from huxley_wire.subjects import Subjects
from support.services import running

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])

SKILLS = ("timers", "audiobooks")


def authorization(subjects: Subjects, persona: str) -> str:
    users = ['    {user: "storage", password: "storage-pw"}']
    for skill in SKILLS:
        users.append(
            f'    {{user: "{skill}", password: "{skill}-pw", permissions: {{\n'
            f'      publish: {{allow: ["{subjects.storage_kv(persona, skill)}"]}}\n'
            f'      subscribe: {{allow: ["_INBOX_{skill}.>"]}}\n'
            "    }}"
        )
    return "authorization {\n  users = [\n" + "\n".join(users) + "\n  ]\n}\n"


@pytest.fixture
def secured_server(tmp_path: Path, subjects: Subjects, persona: str):
    config = tmp_path / "nats.conf"
    config.write_text(authorization(subjects, persona))
    server = NatsServer(store_dir=tmp_path / "js", config_file=config, log_file=tmp_path / "nats.log").start()
    yield server
    server.stop()


class SkillConnection:
    def __init__(self) -> None:
        self.errors: asyncio.Queue[str] = asyncio.Queue()  # what the server refused
        self.nc: Client | None = None

    async def connect(self, url: str, skill: str) -> Client:
        async def on_error(exc: Exception) -> None:
            self.errors.put_nowait(str(exc))

        self.nc = await nats.connect(
            url, user=skill, password=f"{skill}-pw", inbox_prefix=f"_INBOX_{skill}", error_cb=on_error
        )
        return self.nc


@pytest.fixture
async def skill_connections(secured_server: NatsServer) -> AsyncIterator[dict[str, SkillConnection]]:
    connections = {skill: SkillConnection() for skill in SKILLS}
    for skill, conn in connections.items():
        await conn.connect(secured_server.url, skill)
    yield connections
    for conn in connections.values():
        assert conn.nc is not None
        await conn.nc.close()


async def test_a_skill_cannot_reach_another_skills_namespace(
    secured_server, skill_connections, storage_settings: StorageSettings, subjects, persona
):
    settings = storage_settings.model_copy(
        update={
            "nats_url": secured_server.url,
            "nats_user": "storage",
            "nats_password": SecretStr("storage-pw"),
        }
    )
    timers_conn, books_conn = skill_connections["timers"], skill_connections["audiobooks"]
    assert timers_conn.nc is not None and books_conn.nc is not None
    async with running(StorageService, settings):
        books = SettingsClient(books_conn.nc, subjects, persona, "audiobooks", deadline_s=0)
        await books.set_setting("position", "42")

        timers = SettingsClient(timers_conn.nc, subjects, persona, "timers", deadline_s=0)
        await timers.set_setting("timer:1", "tea")
        assert await timers.list_settings() == [("timer:1", "tea")]

        # The timers credentials asking for the audiobooks namespace: refused by the server.
        other = subjects.storage_kv(persona, "audiobooks")
        for message in (KvGet(key="position"), KvSet(key="position", value="0")):
            with pytest.raises(WireError) as err:
                await request(timers_conn.nc, other, message, timeout=1)
            assert err.value.code == ErrorCode.TIMEOUT, err.value  # nothing answers a refused publish
        denied = f'permissions violation for publish to "{other}"'
        for _ in range(2):
            error = await asyncio.wait_for(timers_conn.errors.get(), 10)
            assert denied in error.lower(), error

        assert await books.get_setting("position") == "42"
        assert await books.list_settings() == [("position", "42")]
        assert await timers.get_setting("timer:1") == "tea"  # the timers connection still works
        assert books_conn.errors.empty() and timers_conn.errors.empty()
