"""`huxley satellite`: a room device (a Raspberry Pi with a mic and a
speaker) runs a local nats-server as a leaf node of the home's hub and the
room's audio-io against it, supervised, until Ctrl-C.

The leaf listens on loopback; the one credential (`huxley auth satellite`
on the hub, role `satellite`) decides what crosses to the hub: its site's
audio-io subjects only. audio-io reads replies under the creds' inbox prefix,
since that is the prefix the hub lets back into the leaf.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from huxley_cli.natsserver import NatsServer
from huxley_cli.natsserver.leaf import BadHubUrl, hub_leaf_urls, leaf_server
from huxley_cli.supervisor import ChildSpec, Supervisor
from huxley_cli.watchdog import WatchdogConfig
from huxley_runtime.bus import inbox_prefix_of_creds
from huxley_runtime.settings import HuxleySettings
from huxley_wire.subjects import token


@dataclass(frozen=True, slots=True)
class SatellitePlan:
    site: str
    hubs: list[str]  # the hub's leafnodes URLs
    creds: Path
    inbox_prefix: str
    data_dir: Path
    port: int  # the leaf's local client port (0: a free one)

    @property
    def leaf_dir(self) -> Path:
        return self.data_dir / "satellite"

    def audio_env(self, url: str) -> dict[str, str]:
        return {
            "HUXLEY_NATS_URL": url,
            "HUXLEY_SITE": self.site,
            "HUXLEY_DATA_DIR": str(self.data_dir),
            "HUXLEY_NATS_INBOX_PREFIX": self.inbox_prefix,
            "PYTHONUNBUFFERED": "1",
        }


def plan(hub: str, creds: Path, site: str, data_dir: Path, port: int = 0) -> SatellitePlan:
    """Check the arguments (a clear error, never a half-started satellite)."""
    token(site, "site")
    if not creds.is_file():
        raise ValueError(
            f"no creds file at {creds} (make one on the hub: huxley auth satellite --site {site})"
        )
    prefix = inbox_prefix_of_creds(creds, site)
    if prefix is None:
        raise ValueError(f"{creds} is not a NATS .creds file with a user JWT")
    try:
        hubs = hub_leaf_urls(hub)
    except BadHubUrl as exc:
        raise ValueError(str(exc)) from None
    return SatellitePlan(site, hubs, creds.resolve(), prefix, data_dir.resolve(), port)


def start_leaf(p: SatellitePlan) -> NatsServer:
    return leaf_server(p.leaf_dir, f"satellite-{p.site}", p.hubs, p.creds, port=p.port).start()


async def _satellite(p: SatellitePlan) -> int:
    leaf = start_leaf(p)
    print(
        f"huxley: leaf nats-server at {leaf.url}, joined to {', '.join(p.hubs)} as site {p.site}", flush=True
    )
    env = p.audio_env(leaf.url)
    spec = ChildSpec("audio-io", [sys.executable, "-m", "huxley_audio_io"], env, health="audio-io")
    bus = HuxleySettings(nats_url=leaf.url, site=p.site, nats_inbox_prefix=p.inbox_prefix, _env_file=None)  # type: ignore[call-arg]
    supervisor = Supervisor([spec], bus=bus, watchdog=WatchdogConfig.from_env(), nats=leaf)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    supervisor.start()
    try:
        await stop.wait()
    finally:
        await supervisor.stop()
        leaf.stop()
    print("huxley: satellite stopped", flush=True)
    return 0


def satellite(
    hub: Annotated[str, typer.Option(help="The hub's leafnodes URL(s), nats://host:7422[,nats://...]")],
    creds: Annotated[Path, typer.Option(help="This room's satellite .creds (from the hub)")],
    site: Annotated[str, typer.Option(help="This room's site (its subjects' token)")],
    port: Annotated[int, typer.Option(help="Local port of the leaf server (0: a free one)")] = 4222,
    data_dir: Annotated[Path | None, typer.Option(help="Where state lives (default ./data)")] = None,
) -> None:
    """Run a room device: a leaf nats-server joined to the hub and this
    site's audio-io, until Ctrl-C."""
    try:
        p = plan(hub, creds, site, data_dir or HuxleySettings().data_dir, port)
    except ValueError as exc:
        print(f"huxley satellite: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    raise typer.Exit(asyncio.run(_satellite(p)))
