"""The home's storage serves every room, so its JWT (sent in its CONNECT
line) lists every room's subjects: the server config's control line fits a
house of many rooms (nats-server's 4 KB default stopped at about twelve)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import nats

from huxley_cli.auth import AuthStore
from huxley_cli.auth_cmd import init_home
from huxley_cli.natsserver import NatsServer
from huxley_wire.permissions import Role, service_identity


async def test_a_storage_for_forty_rooms_connects(tmp_path: Path) -> None:
    store = AuthStore.of(tmp_path / "data")
    now = int(time.time())
    init_home(store, "kitchen", now)
    rooms = tuple(f"guest-room-{n:02d}" for n in range(40))
    storage = replace(service_identity(Role.STORAGE, "kitchen"), also_sites=rooms)
    creds = store.ensure(storage, now)
    assert len(creds.read_text()) > 8192, "a JWT past the old 4 KB limit, twice over"
    server = NatsServer(store_dir=tmp_path / "js", config_file=store.config_path).start()
    try:
        nc = await nats.connect(
            server.url, user_credentials=str(creds), inbox_prefix=storage.inbox_prefix, allow_reconnect=False
        )
        try:
            await nc.flush()  # the CONNECT was taken: a refused one closes the connection first
            assert nc.is_connected
        finally:
            await nc.close()
    finally:
        server.stop()
