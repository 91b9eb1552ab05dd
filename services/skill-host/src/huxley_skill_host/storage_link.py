"""Stand-in for `huxley_runtime.storage_client` (being written on the storage
branch) with the same names and signatures; replaced by it at merge."""

from __future__ import annotations

from nats.aio.client import Client
from pydantic import BaseModel

from huxley_runtime.rpc import DEFAULT_TIMEOUT_S, request_with_retry
from huxley_wire.codec import Ok, Request
from huxley_wire.messages import storage as m
from huxley_wire.subjects import Subjects

DEFAULT_DEADLINE_S = 30.0


class _Caller:
    def __init__(self, nc: Client, subject: str, deadline_s: float, timeout_s: float) -> None:
        self.nc, self.subject, self.deadline_s, self.timeout_s = nc, subject, deadline_s, timeout_s

    async def retried[M: BaseModel](self, message: Request, reply: type[M]) -> M:
        return await request_with_retry(
            self.nc, self.subject, message, reply, timeout=self.timeout_s, deadline_s=self.deadline_s
        )


class SettingsClient:
    def __init__(
        self,
        nc: Client,
        subjects: Subjects,
        persona: str,
        skill: str,
        *,
        deadline_s: float = DEFAULT_DEADLINE_S,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self._call = _Caller(nc, subjects.storage_kv(persona, skill), deadline_s, timeout_s)

    async def get_setting(self, key: str, default: str | None = None) -> str | None:
        found = await self._call.retried(m.KvGet(key=key), m.KvValue)
        return found.value if found.value is not None else default

    async def set_setting(self, key: str, value: str) -> None:
        await self._call.retried(m.KvSet(key=key, value=value), Ok)

    async def list_settings(self, prefix: str = "") -> list[tuple[str, str]]:
        return list((await self._call.retried(m.KvList(prefix=prefix), m.KvItems)).items)

    async def delete_setting(self, key: str) -> None:
        await self._call.retried(m.KvDelete(key=key), m.KvDeleted)


class SchemaClient:
    def __init__(
        self,
        nc: Client,
        subjects: Subjects,
        persona: str,
        skill: str,
        *,
        deadline_s: float = DEFAULT_DEADLINE_S,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self._call = _Caller(nc, subjects.storage_schema(persona, skill), deadline_s, timeout_s)

    async def get_version(self) -> int | None:
        return (await self._call.retried(m.SchemaGet(), m.SchemaVersion)).version

    async def set_version(self, version: int) -> None:
        await self._call.retried(m.SchemaSet(version=version), Ok)
