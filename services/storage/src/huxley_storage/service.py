"""Storage bus adapter (skeleton: the real work lands with the storage issue)."""

from __future__ import annotations

from typing import Any

from huxley_runtime.service import Endpoint, Service
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages import storage as m


class StorageService(Service):
    name = "storage"
    description = "Durable per-skill settings, schema versions, sessions and transcripts"

    async def _not_yet(self, request: Any, subject: str) -> Any:
        raise WireError(ErrorCode.UNAVAILABLE, f"{request.op} is not implemented yet")

    def endpoints(self) -> list[Endpoint]:
        s = self.subjects
        kv = {r: self._not_yet for r in (m.KvGet, m.KvSet, m.KvList, m.KvDelete)}
        schema = {r: self._not_yet for r in (m.SchemaGet, m.SchemaSet)}
        sessions = {
            r: self._not_yet
            for r in (
                m.SessionStart,
                m.SessionRecordTurn,
                m.SessionEnd,
                m.SessionList,
                m.SessionGet,
                m.SessionDelete,
                m.SessionLatestSummary,
            )
        }
        return [
            Endpoint("kv", s.storage_kv_all(), kv, concurrent=True),
            Endpoint("schema", s.storage_schema_all(), schema, concurrent=True),
            Endpoint("sessions", s.storage_sessions_all(), sessions, concurrent=True),
            Endpoint(
                "admin", s.storage_admin(), {m.AdminExport: self._not_yet, m.AdminImport: self._not_yet}
            ),
        ]
