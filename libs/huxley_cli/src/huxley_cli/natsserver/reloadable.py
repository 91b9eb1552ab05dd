"""The config `huxley up` gives its nats-server, and reloading that server.

Revoking a credential takes effect on a reload (SIGHUP), and a reload
re-reads only the config file: JetStream switched on by the `-js`/`-sd`
flags is switched off by it, and focus's state goes with it. So `huxley up`
starts the server from a small config that includes the auth config and
enables JetStream itself, and has the server write its pid (after every
restart too) so that `huxley auth revoke` can reload it.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from huxley_cli.natsserver import NatsServer


def jetstream_config(auth_config: Path, store_dir: Path, pid: Path, out: Path) -> Path:
    """Write `out`: the auth config (included by a relative path, which is
    how nats-server resolves includes), JetStream in `store_dir`, the pid file."""
    include = os.path.relpath(auth_config.resolve(), out.resolve().parent)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        f"include {json.dumps(include)}\n"
        f"jetstream: {{store_dir: {json.dumps(str(store_dir.resolve()))}}}\n"
        f"pid_file: {json.dumps(str(pid.resolve()))}\n"
    )
    return out


def pid_file(data_dir: Path) -> Path:
    return data_dir / "run" / "nats.pid"


def reload_running(data_dir: Path) -> int | None:
    """SIGHUP the nats-server a running `huxley up` started; its pid, or None
    if there is none (nothing to reload: the next start reads the new config)."""
    try:
        pid = int(pid_file(data_dir).read_text().strip())
        # A file left by a crash may name a pid since reused: SIGHUP would
        # end most other programs, so only a nats-server is signalled.
        if b"nats-server" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return None
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError):
        return None
    return pid


def start_home_server(auth_config: Path, data_dir: Path, port: int) -> NatsServer:
    """`huxley up`'s nats-server: JetStream under `<data>/nats`, the log in
    `<data>/nats.log`, its pid in `<data>/run/nats.pid` (for a reload)."""
    run = data_dir / "run"
    config = jetstream_config(auth_config, data_dir / "nats", pid_file(data_dir), run / "nats-server.conf")
    return NatsServer(
        store_dir=data_dir / "nats",
        port=port,
        log_file=data_dir / "nats.log",
        config_file=config,
        jetstream_flags=False,
    ).start()
