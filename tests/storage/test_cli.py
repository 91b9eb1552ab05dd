"""`huxley storage export|import` through the real CLI: a home moves from a
SQLite-backed storage to a PostgreSQL-backed one."""

from __future__ import annotations

import asyncio
import secrets
import sys
from pathlib import Path

import pytest

from huxley_storage.service import StorageService
from huxley_storage.settings import StorageSettings
from huxley_wire.permissions import Role
from huxley_wire.subjects import Subjects
from storage.homes import fill_home, snapshot
from support.auth import SiteAuth
from support.services import running

HUXLEY = str(Path(sys.executable).parent / "huxley")


async def huxley(nats_url: str, site: str, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        HUXLEY,
        *args,
        # The admin tool's identity at that site (what `huxley init` mints).
        env={"PATH": "/usr/bin:/bin", "HUXLEY_NATS_URL": nats_url, "HUXLEY_SITE": site}
        | SiteAuth(site).env(Role.ADMIN),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_move_a_home_from_sqlite_to_postgres(
    nc, nats_url, subjects, persona, storage, storage_settings, pg_database, tmp_path
):
    await fill_home(nc, subjects, persona)
    before = await snapshot(nc, subjects, persona)
    exported = tmp_path / "home.jsonl"

    code, _, err = await huxley(
        nats_url, subjects.site, "storage", "export", "--out", str(exported), "--chunk", "2"
    )
    assert code == 0, err
    assert "exported 8 rows" in err
    code, out, err = await huxley(nats_url, subjects.site, "storage", "export")
    assert code == 0, err
    assert out == exported.read_text()

    target = Subjects(f"t{secrets.token_hex(4)}")
    settings: StorageSettings = storage_settings.model_copy(
        update={"site": target.site, "storage_url": pg_database}
    )
    async with running(StorageService, settings):
        for _ in range(2):  # a repeated import changes nothing
            code, _, err = await huxley(nats_url, target.site, "storage", "import", str(exported))
            assert code == 0, err
            assert "imported 8 rows" in err
        target_nc = await SiteAuth(target.site).connect(nats_url)
        try:
            assert await snapshot(target_nc, target, persona) == before
        finally:
            await target_nc.drain()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_import_reports_the_bad_line(nc, nats_url, subjects, storage, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind": "personas", "persona": "p1", "next_session_id": 1}\n\n{"kind": "nonsense"}\n')
    code, _, err = await huxley(nats_url, subjects.site, "storage", "import", str(bad))
    assert code == 1
    assert "import failed: invalid" in err and "line 3:" in err
