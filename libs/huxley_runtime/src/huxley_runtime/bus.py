"""Connecting to NATS: credentials from settings, and never giving up.

The first connection is retried under the CONNECT policy until it succeeds (a service may
start before the server); after that nats-py reconnects forever by itself.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client

from huxley_runtime.logging import get_logger
from huxley_runtime.retry import CONNECT, retrying
from huxley_runtime.settings import HuxleySettings
from huxley_wire.permissions import SITE_MARK, inbox_prefix
from huxley_wire.subjects import DEFAULT_SITE

INBOX_PREFIX = inbox_prefix("x")[:-1]  # `_INBOX_`, before the identity's name

log = get_logger(component="bus")


def connect_options(settings: HuxleySettings, name: str) -> dict[str, Any]:
    options: dict[str, Any] = {
        "servers": [url.strip() for url in settings.nats_url.split(",") if url.strip()],
        "name": name,
        "allow_reconnect": True,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 1,
        "connect_timeout": 2,
        "ping_interval": 5,
        "max_outstanding_pings": 3,
    }
    if settings.nats_user:
        options["user"] = settings.nats_user
    if settings.nats_password:
        options["password"] = settings.nats_password.get_secret_value()
    if settings.nats_token:
        options["token"] = settings.nats_token.get_secret_value()
    if settings.nats_creds:
        options["user_credentials"] = str(settings.nats_creds)
    prefix = settings.nats_inbox_prefix or (
        inbox_prefix_of_creds(settings.nats_creds, settings.site) if settings.nats_creds else None
    )
    if prefix:
        options["inbox_prefix"] = prefix
    return options


def inbox_prefix_of_creds(path: Path, site: str = DEFAULT_SITE) -> str | None:
    """The inbox prefix of the identity a `.creds` file carries (its JWT's
    `name`, at `site`), or None if the file has no readable name."""
    name = name_of_creds(path)
    return inbox_prefix(name, site) if name else None


def name_of_creds(path: Path) -> str | None:
    """The identity name (the JWT's `name`) a `.creds` file carries, or None."""
    try:
        lines = path.read_text().splitlines()
        jwt = lines[lines.index("-----BEGIN NATS USER JWT-----") + 1].strip()
        body = jwt.split(".")[1]
        name = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["name"]
        return name if isinstance(name, str) and name else None
    except (OSError, ValueError, IndexError, KeyError, TypeError):
        return None


def identity_name(settings: HuxleySettings) -> str | None:
    """Who this part is on the bus: the name its permissions are granted to
    (from its inbox prefix or its creds), None without credentials. A focus
    holder or an output-audio owner must use it: the subjects carry it."""
    prefix = settings.nats_inbox_prefix
    if prefix and prefix.startswith(INBOX_PREFIX) and len(prefix) > len(INBOX_PREFIX):
        return prefix[len(INBOX_PREFIX) :].split(SITE_MARK, 1)[0]  # without `@<site>`
    return name_of_creds(settings.nats_creds) if settings.nats_creds else None


async def connect(settings: HuxleySettings, name: str, *, give_up_after_s: float | None = None) -> Client:
    options = connect_options(settings, name)

    async def on_error(exc: Exception) -> None:
        log.warning("nats_error", client=name, error=str(exc) or type(exc).__name__)

    client: list[Client] = []

    async def on_disconnected() -> None:
        if client and (client[0].is_closed or client[0].is_draining):
            return  # our own clean stop
        log.warning("nats_disconnected", client=name)

    async def on_reconnected() -> None:
        log.info("nats_reconnected", client=name)

    policy = CONNECT.but(deadline_s=give_up_after_s)

    async def attempt() -> Client:
        nc = await nats.connect(
            **options,
            error_cb=on_error,
            disconnected_cb=on_disconnected,
            reconnected_cb=on_reconnected,
        )
        client.append(nc)
        return nc

    def failed(retry: int, exc: BaseException, pause_s: float) -> None:
        log.warning(
            "nats_connect_failed",
            url=settings.nats_url,
            attempt=retry,
            retry_in_s=round(pause_s, 2),
            error=str(exc) or type(exc).__name__,
        )

    # Any failure to connect is retried (refused, DNS, TLS, auth while the server starts).
    return await retrying(policy, attempt, retry_if=lambda exc: isinstance(exc, Exception), on_retry=failed)


async def settle(nc: Client, timeout: int = 5) -> None:
    """Return once everything written so far (SUBs included) reached the server.

    nats-py's `flush()` writes its PING straight to the socket while SUB and PUB
    commands wait in a pending buffer for the flusher task, so one flush can
    come back before a fresh subscription is live on the server (a peer's
    request then gets "no responders"). The first flush wakes the flusher,
    which writes the buffer before the first PONG can be read; the second
    PING therefore follows those commands on the wire.
    """
    await nc.flush(timeout=timeout)
    await nc.flush(timeout=timeout)
