"""`huxley storage export|import`: move a home between storage backends.

Export asks the running storage service (`storage.admin`) for every row, in
chunks, and writes JSON lines; import sends such lines to a storage service
in batches. Rows carry their natural keys, so an interrupted import can
simply be run again. Moving from SQLite to PostgreSQL: export while the
SQLite-backed storage runs, restart storage with HUXLEY_STORAGE_URL set,
import.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, TextIO

import typer
from nats.aio.client import Client

from huxley_cli.tool_bus import ADMIN, tool_bus
from huxley_runtime.rpc import request_with_retry
from huxley_wire.errors import WireError
from huxley_wire.messages import storage as m
from huxley_wire.subjects import Subjects

storage_app = typer.Typer(
    help="Export and import the storage service's data (JSON lines).", no_args_is_help=True
)

IMPORT_BATCH_BYTES = 256 * 1024
REQUEST_TIMEOUT_S = 30.0
RETRY_DEADLINE_S = 60.0

Creds = Annotated[
    Path | None,
    typer.Option(help="Creds file (default: HUXLEY_NATS_CREDS, else <data_dir>/auth/<site>/admin.creds)"),
]


def say(message: str) -> None:
    print(f"huxley storage: {message}", file=sys.stderr, flush=True)


async def _connect(nats_url: str | None, name: str, creds: Path | None = None) -> tuple[Client, Subjects]:
    """As the admin tool (its creds under the data dir, or --creds / HUXLEY_NATS_CREDS)."""
    settings, nc = await tool_bus(nats_url, name, ADMIN, creds)
    return nc, Subjects(settings.site)


async def _export(sink: TextIO, nats_url: str | None, chunk: int, creds: Path | None = None) -> int:
    nc, subjects = await _connect(nats_url, "huxley-storage-export", creds)
    count = 0
    try:
        cursor: str | None = None
        while True:
            page = await request_with_retry(
                nc,
                subjects.storage_admin(),
                m.AdminExport(cursor=cursor, limit=chunk),
                timeout=REQUEST_TIMEOUT_S,
                deadline_s=RETRY_DEADLINE_S,
                max_reply_bytes=m.STORAGE_REPLY_MAX_BYTES,
            )
            for line in page.lines:
                sink.write(line + "\n")
            count += len(page.lines)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    finally:
        await nc.close()
    return count


def batches(lines: list[str], budget: int = IMPORT_BATCH_BYTES) -> Iterator[tuple[int, list[str]]]:
    """(index of the first line, consecutive non-blank lines) groups of about
    `budget` bytes, at least one line each. Blank lines are skipped; keeping
    groups consecutive keeps the service's line numbers true to the file."""
    start, used = 0, 0
    batch: list[str] = []
    for n, line in enumerate(lines):
        size = len(line.encode()) + 4
        if batch and (not line.strip() or used + size > budget):
            yield start, batch
            batch, used = [], 0
        if not line.strip():
            continue
        if not batch:
            start = n
        batch.append(line)
        used += size
    if batch:
        yield start, batch


async def _import(lines: list[str], source: str, nats_url: str | None, creds: Path | None = None) -> int:
    nc, subjects = await _connect(nats_url, "huxley-storage-import", creds)
    imported = 0
    try:
        for start, batch in batches(lines):
            try:
                reply = await request_with_retry(
                    nc,
                    subjects.storage_admin(),
                    m.AdminImport(lines=batch, first_line=start + 1),
                    timeout=REQUEST_TIMEOUT_S,
                    deadline_s=RETRY_DEADLINE_S,
                )
            except WireError as exc:
                raise WireError(exc.code, f"{source}: {exc.message}") from exc
            imported += reply.imported
    finally:
        await nc.close()
    return imported


@storage_app.command("export")
def export(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write here instead of stdout")] = None,
    nats_url: Annotated[str | None, typer.Option(help="NATS server URL")] = None,
    chunk: Annotated[int, typer.Option(min=1, max=5000, help="Rows per request")] = 1000,
    creds: Creds = None,
) -> None:
    """Write every row of every persona as JSON lines."""
    # A failed export never leaves a complete-looking file behind.
    partial = out.with_name(out.name + ".partial") if out is not None else None
    try:
        if out is None or partial is None:
            count = asyncio.run(_export(sys.stdout, nats_url, chunk, creds))
        else:
            with partial.open("w", encoding="utf-8", newline="\n") as sink:
                count = asyncio.run(_export(sink, nats_url, chunk, creds))
            partial.replace(out)
    except WireError as exc:
        if partial is not None:
            partial.unlink(missing_ok=True)
        say(f"export failed: {exc.code}: {exc.message}")
        raise typer.Exit(1) from None
    say(f"exported {count} rows" + (f" to {out}" if out else ""))


@storage_app.command("import")
def import_(
    source: Annotated[Path, typer.Argument(help="A file written by `huxley storage export`")],
    nats_url: Annotated[str | None, typer.Option(help="NATS server URL")] = None,
    creds: Creds = None,
) -> None:
    """Send exported rows to the running storage service (safe to repeat)."""
    with source.open(encoding="utf-8", newline="\n") as lines_in:
        lines = [line.rstrip("\n") for line in lines_in]
    try:
        count = asyncio.run(_import(lines, str(source), nats_url, creds))
    except WireError as exc:
        say(f"import failed: {exc.code}: {exc.message}")
        raise typer.Exit(1) from None
    say(f"imported {count} rows from {source}")
