"""Fixtures for the focus tests: the service in this process, clients for holders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.aio.client import Client

from huxley_focus.service import FocusService
from huxley_focus.settings import FocusSettings
from huxley_runtime.focus_client import FocusClient
from huxley_wire.subjects import Subjects
from support.focus_peers import BridgePeer, RecordingHandler
from support.services import running


@pytest.fixture
def focus_settings(nats_url: str, site: str, tmp_path: Path) -> FocusSettings:
    return FocusSettings(nats_url=nats_url, site=site, data_dir=tmp_path / "data", _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
async def focus(focus_settings: FocusSettings) -> AsyncIterator[FocusService]:
    async with running(FocusService, focus_settings) as service:
        yield service


@pytest.fixture
async def bridge(nc: Client, site: str, focus: FocusService) -> AsyncIterator[BridgePeer]:
    peer = await BridgePeer(nc, site).start()
    yield peer
    await peer.stop()


class Holder:
    """A FocusClient and the handler that records what it was told."""

    def __init__(self, client: FocusClient, handler: RecordingHandler) -> None:
        self.client = client
        self.handler = handler


@pytest.fixture
async def holders(nc: Client, site: str, focus: FocusService) -> AsyncIterator[object]:
    started: list[FocusClient] = []

    async def make(name: str, **options: object) -> Holder:
        handler = RecordingHandler(**options)  # type: ignore[arg-type]
        client = FocusClient(nc, Subjects(site), name, handler)
        await client.start()
        started.append(client)
        return Holder(client, handler)

    yield make
    for client in started:
        await client.stop()
