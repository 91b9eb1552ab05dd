"""The session's nats-server (tests/conftest.py) is the authenticated one:
every other test runs with authentication on."""

from __future__ import annotations

import nats
import pytest
from nats.aio.client import Client

from huxley_wire.subjects import Subjects
from support.auth import SiteAuth
from support.waiting import until


async def test_the_test_server_refuses_an_anonymous_connection(nats_url: str) -> None:
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(nats_url, allow_reconnect=False, max_reconnect_attempts=0)


async def test_the_harness_is_bound_to_its_site(nc: Client, nats_url: str, site: str) -> None:
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    other = Subjects(f"{site}x")
    path = SiteAuth(site).creds("harness")
    client = await nats.connect(
        nats_url, user_credentials=str(path), error_cb=on_error, allow_reconnect=False
    )
    try:
        await client.publish(other.health("storage"), b"{}")
        await client.flush()
        wanted = f'permissions violation for publish to "{other.health("storage")}"'
        await until(lambda: any(wanted in e.lower() for e in errors), timeout=5, what=wanted)
    finally:
        await client.close()
