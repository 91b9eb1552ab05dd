"""`huxley auth compose`: what compose's `init` service writes. One directory
per identity holding only its creds; a server config that works from where
the nats container mounts it; idempotent across `docker compose up`s."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import nats
import nats.errors
import pytest
from typer.testing import CliRunner

from huxley_cli.auth import AuthStore
from huxley_cli.auth_cmd import auth_app
from huxley_cli.compose_auth import CREDS_FILE, bundle, parse_owner
from huxley_cli.natsserver import NatsServer

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
    before = {p: p.read_text() for p in out.rglob("*") if p.is_file()}
    make(tmp_path)
    assert {p: p.read_text() for p in out.rglob("*") if p.is_file()} == before


def test_owner_parses() -> None:
    assert parse_owner("10001:10002") == (10001, 10002)
    assert parse_owner("10001") == (10001, 10001)


async def test_the_exported_config_serves_the_exported_creds_and_refuses_anonymous(tmp_path: Path) -> None:
    _, out = make(tmp_path)
    config = out / "nats" / "nats-server.conf"
    assert f'"{out / "nats" / "operator.jwt"}"' in config.read_text()
    server = NatsServer(store_dir=tmp_path / "js", config_file=config, log_file=tmp_path / "nats.log").start()
    try:
        nc = await nats.connect(server.url, user_credentials=str(out / "skill-timers" / CREDS_FILE))
        await nc.flush()
        await nc.close()
        with pytest.raises((nats.errors.Error, OSError)):
            await nats.connect(server.url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2)
    finally:
        server.stop()


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
