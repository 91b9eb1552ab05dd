"""The bus connection of a one-shot tool (`huxley status`, `tap`, `storage`):
which server, and as whom.

The server: --nats-url, else HUXLEY_NATS_URL, else the one a running
`huxley up` wrote down. The identity: --creds, else HUXLEY_NATS_CREDS, else
the tool's own creds under `<data_dir>/auth/<site>/` (`observer` for status
and tap, `admin` for storage export/import), which `huxley init` made.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from nats.aio.client import Client

from huxley_cli.auth import AuthStore
from huxley_runtime.bus import connect
from huxley_runtime.logging import configure_logging
from huxley_runtime.settings import HuxleySettings

OBSERVER = "observer"
ADMIN = "admin"


def run_file(data_dir: Path) -> Path:
    return data_dir / "run" / "nats.url"


def resolve_nats_url(explicit: str | None, settings: HuxleySettings) -> str:
    """--nats-url, else HUXLEY_NATS_URL, else the bus a running `huxley up` wrote down."""
    if explicit:
        return explicit
    if os.environ.get("HUXLEY_NATS_URL"):
        return settings.nats_url
    recorded = run_file(settings.data_dir.resolve())
    if recorded.is_file():
        return recorded.read_text().strip()
    return settings.nats_url


def resolve_creds(explicit: Path | None, settings: HuxleySettings, identity: str) -> Path | None:
    """--creds, else HUXLEY_NATS_CREDS, else the tool's creds under the data dir (if made)."""
    if explicit is not None:
        return explicit
    if settings.nats_creds is not None:
        return settings.nats_creds
    found = AuthStore.of(settings.data_dir).creds_path(settings.site, identity)
    return found if found.is_file() else None


def tool_settings(
    nats_url: str | None, creds: Path | None, identity: str, site: str | None = None
) -> HuxleySettings:
    settings = HuxleySettings()
    if site is not None:  # the home's own site of a several-room `huxley up`
        settings = settings.model_copy(update={"site": site})
    update: dict[str, object] = {"nats_url": resolve_nats_url(nats_url, settings)}
    found = resolve_creds(creds, settings, identity)
    if found is not None and found != settings.nats_creds:
        # Another identity than the environment's: its own inbox prefix (from the JWT).
        update |= {"nats_creds": found, "nats_inbox_prefix": None}
    return settings.model_copy(update=update)


async def tool_bus(
    nats_url: str | None,
    name: str,
    identity: str,
    creds: Path | None = None,
    give_up_after_s: float = 3,
    site: str | None = None,
) -> tuple[HuxleySettings, Client]:
    """Settings and a bus connection for a one-shot command (quiet logs on stderr)."""
    settings = tool_settings(nats_url, creds, identity, site)
    configure_logging("cli", settings.site, level="error", stream=sys.stderr)
    nc = await connect(settings, name, give_up_after_s=give_up_after_s)
    return settings, nc
