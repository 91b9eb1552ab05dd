"""`huxley auth revoke` next to a running `huxley up`: the server it started
is reloaded, the revoked creds are refused, and JetStream — focus's state —
survives the reload (with JetStream from the -js flag it did not)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import nats
import nats.errors

from huxley_cli.auth import AuthStore
from huxley_cli.auth_cmd import init_home
from huxley_cli.natsserver import free_port
from huxley_cli.natsserver.reloadable import pid_file, reload_running, start_home_server
from huxley_runtime.bus import inbox_prefix_of_creds
from huxley_wire.permissions import skill_identity
from huxley_wire.subjects import focus_kv_bucket
from support.auth import creds_refused
from support.waiting import until

HUXLEY = [sys.executable, "-m", "huxley_cli.main"]


async def test_revoke_reloads_the_running_server_and_keeps_jetstream(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = AuthStore.of(data)
    now = int(time.time())
    init_home(store, "home", now)
    doomed = store.ensure(skill_identity("home", "basic", ("stocks",)), now)
    server = start_home_server(store.config_path, data, free_port())
    try:
        assert server.process is not None
        await until(pid_file(data).exists, 10, "nats-server to write its pid")
        assert int(pid_file(data).read_text()) == server.process.pid
        assert not await creds_refused(server.url, doomed)

        focus_creds = store.creds_path("home", "focus")
        focus = await nats.connect(
            server.url, user_credentials=str(focus_creds), inbox_prefix=inbox_prefix_of_creds(focus_creds)
        )
        try:
            kv = await focus.jetstream().create_key_value(bucket=focus_kv_bucket("home"))
            await kv.put("before", b"1")
            env = {**os.environ, "HUXLEY_DATA_DIR": str(data), "HUXLEY_SITE": "home"}
            command = [*HUXLEY, "auth", "revoke", "skill-stocks"]
            revoke = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
            assert revoke.returncode == 0, revoke.stderr
            assert f"reloaded the running nats-server (pid {server.process.pid})" in revoke.stdout
            await until(lambda: creds_refused(server.url, doomed), 10, "the revoked creds to be refused")
            await kv.put("after", b"2")
            assert (await kv.get("before")).value == b"1"
            assert (await kv.get("after")).value == b"2"
        finally:
            await focus.close()
    finally:
        server.stop()


def test_a_stale_pid_file_signals_nothing(tmp_path: Path) -> None:
    """A pid file left by a crash may name a pid since given to another
    program, which SIGHUP would end: only a nats-server is reloaded."""
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        pid_file(tmp_path).parent.mkdir(parents=True)
        pid_file(tmp_path).write_text(f"{sleeper.pid}\n")
        assert reload_running(tmp_path) is None
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()
    pid_file(tmp_path).write_text("not a pid\n")
    assert reload_running(tmp_path) is None
