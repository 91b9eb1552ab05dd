"""Per-skill namespace quota (issue 12 item 3): a skill may keep at most so
many keys and so many bytes (keys plus values, UTF-8) in its settings, so one
skill cannot fill the disk of the home. Past it a write answers
`quota_exceeded`; a delete frees room at once."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from huxley_storage.tables import settings as t
from huxley_wire.errors import ErrorCode, WireError


@dataclass(frozen=True, slots=True)
class Limits:
    max_keys: int
    max_bytes: int


@dataclass(frozen=True, slots=True)
class Usage:
    keys: int
    bytes: int


def entry_size(key: str, value: str) -> int:
    return len(key.encode()) + len(value.encode())


def check(usage: Usage, limits: Limits, key: str, old: str | None, new: str) -> None:
    """Refuse the write of `new` under `key` (holding `old`) past the limits."""
    keys = usage.keys + (0 if old is not None else 1)
    size = usage.bytes - (entry_size(key, old) if old is not None else 0) + entry_size(key, new)
    if keys > limits.max_keys:
        raise WireError(
            ErrorCode.QUOTA_EXCEEDED,
            f"this skill already keeps {usage.keys} keys; the limit is {limits.max_keys} (delete some)",
        )
    if size > limits.max_bytes:
        raise WireError(
            ErrorCode.QUOTA_EXCEEDED,
            f"this write would make the skill's settings {size} bytes; the limit is {limits.max_bytes}",
        )


async def usage(conn: AsyncConnection, persona: str, skill: str) -> Usage:
    """Keys and bytes (UTF-8) the namespace holds now."""
    # SQLite's length() counts characters of text; of a blob, bytes.
    if conn.dialect.name == "sqlite":
        size = sa.func.length(sa.cast(t.c.key, sa.LargeBinary)) + sa.func.length(
            sa.cast(t.c.value, sa.LargeBinary)
        )
    else:
        size = sa.func.octet_length(t.c.key) + sa.func.octet_length(t.c.value)
    query = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(size), 0)).where(
        t.c.persona == persona, t.c.skill == skill
    )
    keys, total = (await conn.execute(query)).one()
    return Usage(int(keys), int(total))


Namespace = tuple[str, str]  # (persona, skill)


class Ledger:
    """What each namespace holds, counted once from the database and then kept
    up to date with every committed set and delete, so the quota costs no
    query per write (group commit stays one transaction per batch). Writes of
    one namespace that are in flight together may pass the limit by what they
    add between them; the next write sees the sum."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._usage: dict[Namespace, Usage] = {}

    def known(self, namespace: Namespace) -> Usage | None:
        return self._usage.get(namespace)

    def learn(self, namespace: Namespace, usage: Usage) -> None:
        self._usage.setdefault(namespace, usage)

    def check(self, namespace: Namespace, key: str, old: str | None, new: str) -> None:
        usage = self._usage.get(namespace)
        if usage is not None:
            check(usage, self.limits, key, old, new)

    def committed(self, namespace: Namespace, key: str, old: str | None, new: str | None) -> None:
        usage = self._usage.get(namespace)
        if usage is None:
            return
        keys = usage.keys + (new is not None) - (old is not None)
        size = usage.bytes + (entry_size(key, new) if new is not None else 0)
        size -= entry_size(key, old) if old is not None else 0
        self._usage[namespace] = Usage(max(keys, 0), max(size, 0))

    def forget_all(self) -> None:
        self._usage.clear()
