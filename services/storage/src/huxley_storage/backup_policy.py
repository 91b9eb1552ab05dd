"""When SQLite backups are due and which ones to delete (no I/O, time passed in).

One backup per database per day, named by its date (`huxley-2026-11-22.db`).
The newest `keep` are kept: counting files rather than days means a machine
that was off for weeks still keeps its last week of backups.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

PREFIX = "huxley-"
SUFFIX = ".db"
DEFAULT_KEEP = 7


def backup_name(day: date) -> str:
    return f"{PREFIX}{day.isoformat()}{SUFFIX}"


def backup_day(name: str) -> date | None:
    """The date a backup file name carries, or None for any other file."""
    if not (name.startswith(PREFIX) and name.endswith(SUFFIX)):
        return None
    try:
        return date.fromisoformat(name[len(PREFIX) : -len(SUFFIX)])
    except ValueError:
        return None


def backup_due(existing: Iterable[date], today: date) -> bool:
    return today not in set(existing)


def expired(existing: Iterable[date], keep: int = DEFAULT_KEEP) -> list[date]:
    """The backups to delete: all but the newest `keep`, oldest first."""
    newest_first = sorted(set(existing), reverse=True)
    return sorted(newest_first[max(keep, 1) :])
