"""`huxley up --sites kitchen,bedroom` (issue 16): each room its own focus,
skill-host, bridge and audio-io, one storage for the home, and `huxley
status` listing the services room by room."""

from __future__ import annotations

import json
import os
import secrets
from collections import Counter

import pytest

from huxley_cli.main import SERVICE_MODULES
from huxley_cli.natsserver import free_port
from huxley_cli.up_sites import parse_sites, room_lines, room_specs
from huxley_wire.subjects import SERVICES, InvalidToken
from support.up import HUXLEY, MARK_VAR, marked_processes, run, running_up
from support.waiting import until


def auth_env(sites: list[str]) -> dict[tuple[str, str], dict[str, str]]:
    return {(s, site): {"HUXLEY_NATS_CREDS": f"{site}/{s}.creds"} for site in sites for s in SERVICE_MODULES}


def test_each_room_gets_its_own_services_and_one_storage_serves_them_all():
    sites = ["kitchen", "bedroom"]
    env = {"HUXLEY_NATS_URL": "u", "HUXLEY_DATA_DIR": "/d"}
    specs = room_specs(SERVICE_MODULES, "py", env, sites, auth_env(sites), 8765)
    by_name = {spec.name: spec for spec in specs}
    assert specs[0].name == "storage"
    storage = by_name["storage"]
    assert storage.env["HUXLEY_SITE"] == "kitchen" and storage.env["HUXLEY_STORAGE_SITES"] == "bedroom"
    for site in sites:
        for service in ("focus", "skill-host", "realtime-bridge", "audio-io"):
            spec = by_name[f"{service}@{site}"]
            assert spec.env["HUXLEY_SITE"] == site and spec.site == site and spec.health == service
            assert spec.env["HUXLEY_NATS_CREDS"] == f"{site}/{service}.creds"
    # Each room's web gateway on its own port.
    assert by_name["audio-io@kitchen"].env["HUXLEY_WEB_PORT"] == "8765"
    assert by_name["audio-io@bedroom"].env["HUXLEY_WEB_PORT"] == "8766"
    assert len(specs) == 1 + 4 * 2
    # Each room's injects in flight in its own outbox (the first keeps the default).
    assert "HUXLEY_INJECT_OUTBOX_DIR" not in by_name["skill-host@kitchen"].env
    assert by_name["skill-host@bedroom"].env["HUXLEY_INJECT_OUTBOX_DIR"] == "/d/outbox/bedroom"
    assert room_lines(sites, 8765) == "kitchen (web :8765), bedroom (web :8766)"


def test_one_room_is_the_stack_it_always_was():
    specs = room_specs(SERVICE_MODULES, "py", {}, ["home"], auth_env(["home"]), 8765)
    assert [s.name for s in specs] == list(SERVICE_MODULES)
    assert not any("HUXLEY_STORAGE_SITES" in s.env or "HUXLEY_WEB_PORT" in s.env for s in specs)


def test_sites_are_checked():
    assert parse_sites(" kitchen, bedroom ,kitchen", "home") == ["kitchen", "bedroom"]
    assert parse_sites("", "home") == ["home"]
    with pytest.raises(InvalidToken):
        parse_sites("kitchen,bed.room", "home")


@pytest.mark.slow
async def test_up_with_two_rooms_runs_both_and_status_groups_them(tmp_path, site):
    kitchen, bedroom = site, f"{site}b"
    mark = secrets.token_hex(8)
    data = tmp_path / "data"
    env = {
        **os.environ,
        MARK_VAR: mark,
        "HUXLEY_DATA_DIR": str(data),
        "HUXLEY_NATS_PORT": str(free_port()),
        "HUXLEY_WEB_PORT": "0",
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("HUXLEY_NATS_URL", "OPENAI_API_KEY", "HUXLEY_SITE"):
        env.pop(name, None)
    up_log = tmp_path / "up.log"
    with running_up([*HUXLEY, "up", "--sites", f"{kitchen},{bedroom}"], env, up_log, stop_timeout=60) as up:
        await until((data / "run" / "sites").exists, 120, "huxley up wrote its rooms")
        # `huxley status` finds the rooms `huxley up` runs, as the home's observer.
        status = await run([*HUXLEY, "status", "--json", "--wait", "120"], env, timeout=150)
        assert status.returncode == 0, status.stdout + up_log.read_text()
        rows = json.loads(status.stdout)
        for room in (kitchen, bedroom):
            healthy = {r["service"] for r in rows if r["site"] == room and r["healthy"]}
            assert healthy == set(SERVICES), (room, rows)
        # One storage (listed under both rooms), every other service once per room.
        storages = {r["instance"] for r in rows if r["service"] == "storage"}
        assert len(storages) == 1, rows
        text = await run([*HUXLEY, "status"], env, timeout=60)
        assert f"site {kitchen}" in text.stdout and f"site {bedroom}" in text.stdout, text.stdout
        commands = Counter(
            module
            for command in marked_processes(mark).values()
            for module in SERVICE_MODULES.values()
            if f"-m {module}" in command
        )
        assert commands == {m: 1 if s == "storage" else 2 for s, m in SERVICE_MODULES.items()}, commands
    assert "huxley: stopped" in up.output(), up.output()
    assert not up.leftovers, f"processes left behind: {up.leftovers}"
