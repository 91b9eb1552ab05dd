"""Settings writes as plain `sqlite3` statements, for the SQLite batch writer
(sqlite_writer.py), which runs a whole group-commit batch in its thread.
They are the statements repo/settings.py has SQLAlchemy build for SQLite, on
the same Alembic-made table."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

Row = tuple[str, str, str, str, float]  # persona, skill, key, value, updated_at

UPSERT = (
    "INSERT INTO settings (persona, skill, key, value, updated_at) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (persona, skill, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
)
DELETE = "DELETE FROM settings WHERE persona = ? AND skill = ? AND key = ?"


def put_many(conn: sqlite3.Connection, rows: Iterable[Row]) -> None:
    conn.executemany(UPSERT, rows)


def put(conn: sqlite3.Connection, row: Row) -> None:
    conn.execute(UPSERT, row)


def delete(conn: sqlite3.Connection, persona: str, skill: str, key: str) -> bool:
    return conn.execute(DELETE, (persona, skill, key)).rowcount > 0
