"""A satellite's own nats-server: a leaf node joined to the home's hub.

The leaf listens on loopback only and asks its local clients (the room's
audio-io) for nothing: what may cross to the hub is decided by the one
credential of the leaf connection, whose JWT the hub checks (role
`satellite` in `huxley_wire.permissions`: its site's audio-io subjects).
Subjects the creds may publish are exported to the hub, subjects they may
subscribe are imported. The leaf keeps no JetStream and reconnects to the
hub by itself; local traffic stays local while the hub is away.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

from huxley_cli.natsserver import NatsServer, bundled_nats_server, free_port

DEFAULT_LEAF_PORT = 7422  # nats-server's leafnodes port


class BadHubUrl(ValueError):
    pass


def hub_leaf_url(hub: str) -> str:
    """`nats://host:port` or `nats-leaf://host:port` (the hub's leafnodes
    port, 7422 unless given) as the leaf remote's URL; several comma-separated
    hub nodes allowed by `hub_leaf_urls`."""
    parts = urlsplit(hub.strip() if "://" in hub else f"nats-leaf://{hub.strip()}")
    if parts.scheme not in ("nats", "nats-leaf", "tls") or not parts.hostname:
        raise BadHubUrl(f"hub URL {hub!r}: expected nats://host:port (the hub's leafnodes port)")
    if parts.path not in ("", "/") or parts.query or parts.username:
        raise BadHubUrl(f"hub URL {hub!r}: only host and port (credentials come from --creds)")
    try:
        port = parts.port or DEFAULT_LEAF_PORT
    except ValueError as exc:
        raise BadHubUrl(f"hub URL {hub!r}: {exc}") from None
    scheme = "tls" if parts.scheme == "tls" else "nats-leaf"
    return f"{scheme}://{parts.hostname}:{port}"


def hub_leaf_urls(hubs: str) -> list[str]:
    urls = [hub_leaf_url(h) for h in hubs.split(",") if h.strip()]
    if not urls:
        raise BadHubUrl("no hub URL given")
    return urls


def leaf_config(name: str, host: str, port: int, hubs: list[str], creds: Path, reconnect_s: int = 1) -> str:
    """The leaf server's config (pure). Its local clients stay in the global
    account, bound to the hub account the creds belong to."""
    urls = ", ".join(json.dumps(u) for u in hubs)
    lines = [
        "# Written by `huxley satellite`; do not edit.",
        f"server_name: {json.dumps(name)}",
        f"listen: {json.dumps(f'{host}:{port}')}",
        "leafnodes: {",
        f"  reconnect: {reconnect_s}",  # seconds between attempts (an integer for 2.9)
        "  remotes: [",
        f"    {{ urls: [{urls}], credentials: {json.dumps(str(creds.resolve()))} }}",
        "  ]",
        "}",
    ]
    return "\n".join(lines) + "\n"


def leaf_server(
    root: Path,
    name: str,
    hubs: list[str],
    creds: Path,
    port: int = 0,
    host: str = "127.0.0.1",
    binary: Path | None = None,
) -> NatsServer:
    """A NatsServer (not started) whose config joins the hub as a leaf; the
    port is fixed here so the config names it."""
    port = port or free_port(host)
    root.mkdir(parents=True, exist_ok=True)
    config = root / "leaf.conf"
    config.write_text(leaf_config(name, host, port, hubs, creds))
    return NatsServer(
        store_dir=root / "js",
        port=port,
        host=host,
        binary=binary or bundled_nats_server(),
        config_file=config,
        log_file=root / "leaf.log",
        jetstream_flags=False,
    )
