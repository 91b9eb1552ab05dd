"""`huxley auth compose`: what compose's `init` service writes. One directory
per identity holding only its creds; a server config that works from where
the nats container mounts it; idempotent across `docker compose up`s."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

import nats
import nats.errors
import pytest
from typer.testing import CliRunner

from huxley_cli.auth import AuthStore
from huxley_cli.auth_cmd import auth_app
from huxley_cli.compose_auth import CREDS_FILE, bundle, compose_revoke, compose_skill, parse_owner
from huxley_cli.natsserver import NatsServer
from huxley_runtime.bus import inbox_prefix_of_creds
from huxley_wire.subjects import focus_kv_bucket
from support.auth import creds_refused
from support.services import REPO
from support.waiting import until

SKILLS = ["system", "timers"]


def make(tmp_path: Path) -> tuple[AuthStore, Path]:
    store = AuthStore.of(tmp_path / "data")
    out = tmp_path / "out"
    bundle(
        store,
        "home",
        "basic",
        SKILLS,
        out,
        nats_mount=out / "nats",
        nats_url="nats://nats:4222",
        jetstream_dir=tmp_path / "js",
        now=int(time.time()),
    )
    return store, out


def test_each_identity_gets_a_directory_with_only_its_creds(tmp_path: Path) -> None:
    _, out = make(tmp_path)
    expected = {
        "storage",
        "focus",
        "realtime-bridge",
        "audio-io",
        "observer",
        "admin",
        "skill-system",
        "skill-timers",
    }
    dirs = {p.name for p in out.iterdir()} - {"nats"}
    assert dirs == expected
    for name in expected - {"observer"}:
        files = list((out / name).iterdir())
        assert [f.name for f in files] == [CREDS_FILE], name
        assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert {f.name for f in (out / "nats").iterdir()} == {"nats-server.conf", "operator.jwt"}
    assert not list(out.rglob("*.nk")), "no key seed leaves the auth volume"


def test_a_second_run_keeps_every_credential(tmp_path: Path) -> None:
    _, out = make(tmp_path)
    # The creds; the server config is re-signed (its JWTs carry the time).
    before = {p: p.read_text() for p in out.rglob("*.creds")}
    make(tmp_path)
    assert {p: p.read_text() for p in out.rglob("*.creds")} == before


def test_owner_parses() -> None:
    assert parse_owner("10001:10002") == (10001, 10002)
    assert parse_owner("10001") == (10001, 10001)


async def test_the_exported_config_serves_the_exported_creds_and_refuses_anonymous(tmp_path: Path) -> None:
    _, out = make(tmp_path)
    config = out / "nats" / "nats-server.conf"
    assert f'"{out / "nats" / "operator.jwt"}"' in config.read_text()
    server = NatsServer(
        store_dir=tmp_path / "js", config_file=config, log_file=tmp_path / "nats.log", jetstream_flags=False
    ).start()
    try:
        nc = await nats.connect(server.url, user_credentials=str(out / "skill-timers" / CREDS_FILE))
        await nc.flush()
        await nc.close()
        with pytest.raises((nats.errors.Error, OSError)):
            await nats.connect(server.url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2)
    finally:
        server.stop()


async def test_an_added_skill_is_served_and_its_revocation_reloads_without_losing_jetstream(
    tmp_path: Path,
) -> None:
    """What `huxley skill add` and `remove` run in their one-shot containers:
    the added skill's creds connect with no reload; after the revocation and
    a reload (SIGHUP) they are refused, and JetStream (focus's state) is
    still on, which it was not while the flags alone enabled it."""
    _, out = make(tmp_path)
    data = tmp_path / "data"
    compose_skill("skill-stocks", out=out, skill=["stocks"], owner="0:0", data_dir=data)
    added = out / "skill-stocks" / CREDS_FILE
    server = NatsServer(
        store_dir=tmp_path / "js",
        config_file=out / "nats" / "nats-server.conf",
        log_file=tmp_path / "nats.log",
        jetstream_flags=False,
    ).start()
    try:
        nc = await nats.connect(server.url, user_credentials=str(added), allow_reconnect=False)
        await nc.close()
        compose_revoke(
            "skill-stocks", out=out, nats_mount=out / "nats", nats_store=tmp_path / "js", data_dir=data
        )
        assert server.process is not None
        server.process.send_signal(signal.SIGHUP)

        revoked = "the revoked skill's creds refused"
        await until(lambda: creds_refused(server.url, added), timeout=10, what=revoked)
        focus_creds = out / "focus" / CREDS_FILE
        focus = await nats.connect(
            server.url, user_credentials=str(focus_creds), inbox_prefix=inbox_prefix_of_creds(focus_creds)
        )
        try:
            kv = await focus.jetstream().create_key_value(bucket=focus_kv_bucket("home"))
            await kv.put("probe", b"1")
            assert (await kv.get("probe")).value == b"1"
        finally:
            await focus.close()
    finally:
        server.stop()


def test_a_home_with_more_rooms_and_one_more_rooms_creds(tmp_path: Path) -> None:
    """docker-compose.yml with HUXLEY_STORAGE_SITES, then docker-compose.site.yml
    for the bedroom: the room's init mints its own parts only, at its site."""
    store = AuthStore.of(tmp_path / "data")
    home_out, room_out = tmp_path / "home", tmp_path / "room"
    common = {"nats_url": "nats://nats:4222", "now": int(time.time())}
    bundle(
        store,
        "kitchen",
        "basic",
        SKILLS,
        home_out,
        nats_mount=home_out / "nats",
        also_sites=("bedroom",),
        **common,
    )
    for name in ("storage", "observer", "admin"):
        assert store.identity("kitchen", name).also_sites == ("bedroom",)  # type: ignore[union-attr]
    bundle(store, "bedroom", "basic", ["timers"], room_out, nats_mount=room_out / "nats", room=True, **common)
    assert {p.name for p in room_out.iterdir()} == {"focus", "realtime-bridge", "audio-io", "skill-timers"}
    for name in ("focus", "realtime-bridge", "audio-io", "skill-timers"):
        assert store.identity("bedroom", name).site == "bedroom"  # type: ignore[union-attr]


def test_the_room_compose_file_runs_a_room_on_the_homes_bus() -> None:
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI")
    env = {**os.environ, "SITE": "bedroom", "WEB_PORT": "8766"}
    rendered = subprocess.run(
        ["docker", "compose", "-f", str(REPO / "docker-compose.site.yml"), "config", "--format", "json"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    config = json.loads(rendered.stdout)
    assert config["name"] == "huxley-bedroom"
    services = config["services"]
    assert {"focus", "realtime-bridge", "audio-io", "skill-timers"} <= set(services)
    assert not {"nats", "storage"} & set(services)  # the home's
    for name, service in services.items():
        assert service["environment"]["HUXLEY_SITE"] == "bedroom", name
    assert "--room" in services["init"]["command"]
    network = config["networks"]["default"]
    assert network["name"] == "huxley_default" and network["external"] is True


def test_init_names_a_container_of_several_skills_and_refuses_a_bad_spec(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HUXLEY_SITE", "home")
    args = ["compose", "--out", str(tmp_path / "out"), "--data-dir", str(tmp_path / "data")]
    done = CliRunner().invoke(auth_app, [*args, "--skill=skill-media=timers,audiobooks"])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "out" / "skill-media" / CREDS_FILE).is_file()
    store = AuthStore.of(tmp_path / "data")
    identity = store.identity("home", "skill-media")
    assert identity is not None and identity.skills == ("timers", "audiobooks")
    refused = CliRunner().invoke(auth_app, [*args, "--skill=bad.skill"])
    assert refused.exit_code == 2 and "invalid skill 'bad.skill'" in refused.output
    assert not isinstance(refused.exception, ValueError)
