"""Export and import over storage.admin: every row out as JSON lines, in
chunks, and back in on another storage (a fresh SQLite home)."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.aio.client import Client

from huxley_cli.storage_cmd import batches
from huxley_runtime.rpc import request
from huxley_runtime.storage_client import SessionsClient, SettingsClient
from huxley_storage.service import StorageService
from huxley_storage.settings import StorageSettings
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages import storage as m
from huxley_wire.subjects import Subjects
from storage.homes import fill_home, snapshot
from support.auth import SiteAuth
from support.services import running


async def export_all(nc: Client, subjects: Subjects, limit: int = 1000) -> list[str]:
    lines: list[str] = []
    cursor: str | None = None
    while True:
        chunk = await request(
            nc,
            subjects.storage_admin(),
            m.AdminExport(cursor=cursor, limit=limit),
            max_reply_bytes=m.STORAGE_REPLY_MAX_BYTES,
        )
        assert len(chunk.lines) <= limit
        lines += chunk.lines
        if chunk.next_cursor is None:
            return lines
        cursor = chunk.next_cursor


async def import_lines(nc: Client, subjects: Subjects, lines: list[str]) -> int:
    imported = 0
    for start, batch in batches(lines):
        message = m.AdminImport(lines=batch, first_line=start + 1)
        imported += (await request(nc, subjects.storage_admin(), message)).imported
    return imported


@pytest.fixture
def target_subjects() -> Subjects:
    return Subjects(f"t{secrets.token_hex(4)}")


@pytest.fixture
async def target_nc(nats_url: str, target_subjects: Subjects) -> AsyncIterator[Client]:
    """The harness at the target's site (each harness is bound to one site)."""
    client = await SiteAuth(target_subjects.site).connect(nats_url)
    yield client
    await client.drain()


@pytest.fixture
async def target(storage_settings: StorageSettings, target_subjects: Subjects, tmp_path: Path):
    """A second, empty storage on SQLite, on a site of its own."""
    settings = storage_settings.model_copy(
        update={"site": target_subjects.site, "storage_url": None, "data_dir": tmp_path / "target"}
    )
    async with running(StorageService, settings) as service:
        yield service


def of_persona(lines: list[str], persona: str) -> list[str]:
    """The lines of one persona (a PostgreSQL database holds other tests' too)."""
    return [line for line in lines if json.loads(line)["persona"] == persona]


async def test_export_then_import_moves_a_home(
    nc, target_nc, subjects, persona, storage, target, target_subjects
):
    await fill_home(nc, subjects, persona)
    lines = of_persona(await export_all(nc, subjects, limit=3), persona)
    assert [json.loads(line)["kind"] for line in lines] == [
        "personas",
        "schema_meta",
        "settings",
        "settings",
        "settings",
        "sessions",
        "turns",
        "turns",
    ]
    assert await import_lines(target_nc, target_subjects, lines) == len(lines)
    before = await snapshot(nc, subjects, persona)
    assert await snapshot(target_nc, target_subjects, persona) == before
    # Importing again changes nothing: every row has a natural key...
    await import_lines(target_nc, target_subjects, lines)
    assert await snapshot(target_nc, target_subjects, persona) == before
    # ...and the new home exports exactly what the old one did (record ids included).
    assert await export_all(target_nc, target_subjects) == lines
    assert any('"record_id":"r-five"' in line for line in lines)


async def test_rows_changing_during_an_export_do_not_shift_the_rest(nc, subjects, persona, storage):
    kv = SettingsClient(nc, subjects, persona, "timers", deadline_s=0)
    keys = [f"k{n:02d}" for n in range(10)]
    for key in keys:
        await kv.set_setting(key, "v")
    exported: list[str] = []
    cursor: str | None = None
    deleted = False
    while True:
        chunk = await request(
            nc,
            subjects.storage_admin(),
            m.AdminExport(cursor=cursor, limit=3),
            max_reply_bytes=m.STORAGE_REPLY_MAX_BYTES,
        )
        exported += of_persona(chunk.lines, persona)
        if chunk.next_cursor is None:
            break
        cursor = chunk.next_cursor
        if len(exported) >= 3 and not deleted:
            await kv.delete_setting("k00")  # already sent: must not make the export skip a row
            deleted = True
    assert deleted and len(exported) == len(keys)
    assert [json.loads(line).get("key") for line in exported if "key" in line] == keys


async def test_imported_sessions_keep_their_ids_and_new_ones_follow(
    nc, target_nc, subjects, persona, storage, target, target_subjects
):
    sessions = SessionsClient(nc, subjects, persona, deadline_s=0)
    storage.clock = lambda: 1_000_000.0
    first = (await sessions.start()).session_id
    await sessions.delete(first)
    storage.clock = lambda: 2_000_000.0
    kept = (await sessions.start()).session_id
    lines = of_persona(await export_all(nc, subjects), persona)
    await import_lines(target_nc, target_subjects, lines)
    moved = SessionsClient(target_nc, target_subjects, persona, deadline_s=0)
    assert [s.session_id for s in await moved.list()] == [kept]
    target.clock = lambda: 3_000_000.0
    assert (await moved.start()).session_id == kept + 1


async def test_export_chunks_cover_every_row_once(nc, subjects, persona, storage):
    kv = SettingsClient(nc, subjects, persona, "timers", deadline_s=0)
    for n in range(25):
        await kv.set_setting(f"k{n:02d}", "x" * 30_000)  # several byte-limited chunks
    whole = await export_all(nc, subjects, limit=5000)
    assert await export_all(nc, subjects, limit=7) == whole
    keys = [json.loads(line).get("key") for line in of_persona(whole, persona)]
    assert keys == [f"k{n:02d}" for n in range(25)]


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("not json", "line 2"),
        ('{"kind": "settings", "persona": "p", "skill": "timers", "key": "k"}', "value"),
        ('{"kind": "gossip", "persona": "p"}', "line 2"),
        (
            '{"kind": "settings", "persona": "a.b", "skill": "s", "key": "k", "value": "v", "updated_at": 1}',
            "persona",
        ),
        (
            json.dumps(
                {
                    "kind": "settings",
                    "persona": "p",
                    "skill": "s",
                    "key": "k",
                    "value": "v" * 70_000,
                    "updated_at": 1,
                }
            ),
            "64 KiB",
        ),
    ],
)
async def test_bad_import_lines_are_refused_whole(nc, subjects, persona, storage, line, why):
    good = json.dumps(
        {
            "kind": "settings",
            "persona": persona,
            "skill": "timers",
            "key": "k",
            "value": "v",
            "updated_at": 1.0,
        }
    )
    with pytest.raises(WireError) as err:
        await import_lines(nc, subjects, [good, line])
    assert err.value.code in (ErrorCode.INVALID, ErrorCode.TOO_LARGE) and why in err.value.message
    assert await SettingsClient(nc, subjects, persona, "timers", deadline_s=0).get_setting("k") is None
