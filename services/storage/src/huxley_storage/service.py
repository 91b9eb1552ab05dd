"""The storage bus adapter: subjects to repository calls.

Identity comes from the subject: `storage.kv.<persona>.<skill>` names the
namespace, and nothing in a request body can reach another one. Every reply
is sent after the transaction committed; a database that cannot be reached
answers `unavailable` at once and is probed until it is back.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import date
from typing import Any

from huxley_runtime.service import Endpoint, Handler, Service
from huxley_storage import quota, transfer
from huxley_storage.backup import Backups
from huxley_storage.databases import Backend, PostgresBackend, SqliteBackend
from huxley_storage.kv import Kv
from huxley_storage.paging import fill_page, json_size
from huxley_storage.personas import ServedPersonas, configured, shared_skills
from huxley_storage.repo import schema_versions, sessions, settings
from huxley_storage.repo import transfer as rows
from huxley_storage.rules import check_key, check_prefix, check_text
from huxley_storage.scope import ScopeError, Scopes
from huxley_storage.settings import StorageSettings
from huxley_storage.store import Store
from huxley_wire.codec import OK, Ok, Request
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages import storage as m
from huxley_wire.subjects import InvalidToken, Subjects

STORAGE_DIR = "storage"
# Subjects whose namespace is remembered (a home has a few dozen skills and rooms).
NAMESPACES_KEPT = 4096


class StorageService(Service):
    name = "storage"
    description = "Durable per-skill settings, schema versions, sessions and transcripts"
    settings_class = StorageSettings
    settings: StorageSettings

    def __init__(self, settings: StorageSettings | None = None) -> None:
        super().__init__(settings)
        self.clock: Callable[[], float] = time.time  # wall clock; tests may pass their own
        backend: Backend
        if self.settings.storage_url:
            backend = PostgresBackend(
                self.settings.storage_url,
                connect_timeout_s=self.settings.storage_connect_timeout_s,
                command_timeout_s=self.settings.storage_command_timeout_s,
            )
        else:
            backend = SqliteBackend(
                self.settings.data_dir / STORAGE_DIR, self.settings.storage_sqlite_synchronous
            )
        self.store = Store(backend)
        self.served = ServedPersonas(
            configured(self.settings.storage_personas, self.settings.personas_dir, self.settings.persona)
        )
        # One storage for every room it serves; whose rows a request reaches: scope.py.
        self.sites = {site: Subjects(site) for site in self.settings.served_sites()}
        self.scopes = Scopes(
            self.settings.site,
            shared_skills(self.served.names, self.settings.personas_dir, self.settings.persona),
        )
        self.quota = quota.Limits(self.settings.storage_quota_keys, self.settings.storage_quota_bytes)
        self.kv = Kv(self.store, self.quota)
        self._namespaces: dict[str, tuple[str, str]] = {}  # subject -> (persona, skill)
        self.backups = (
            Backups(backend, self.settings.storage_backup_keep)
            if isinstance(backend, SqliteBackend)
            else None
        )

    # -- lifecycle ---------------------------------------------------------------
    async def on_start(self) -> None:
        backend = self.store.backend
        self.log.info("storage_backend", backend=backend.kind, location=backend.location)
        if isinstance(backend, PostgresBackend):
            # Migrate now, so health tells at once whether the database is there.
            await self.store.check()
        self.spawn(self._probe_loop(), name="probe")
        if self.backups is not None and self.settings.storage_backups:
            self.spawn(self._backup_loop(), name="backups")

    async def on_stop(self) -> None:
        await self.store.backend.close()

    def health(self) -> tuple[str, dict[str, Any]]:
        detail = self.store.detail() | self.kv.detail()
        if self.backups is not None:
            detail |= self.backups.detail()
        else:
            detail["last_backup"] = None
        return ("degraded" if self.store.outages else "ok"), detail

    async def _probe_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.storage_probe_interval_s)
            if self.store.outages:
                await self.store.probe()

    async def _backup_loop(self) -> None:
        assert self.backups is not None
        while True:
            await self.backups.run(date.today())
            await asyncio.sleep(self.settings.storage_backup_check_s)

    # -- settings ----------------------------------------------------------------
    def health_sites(self) -> list[str]:
        return list(self.sites)

    def _site(self, subject: str) -> tuple[str, Subjects]:
        site = subject.split(".")[1] if subject.count(".") >= 2 else ""
        subjects = self.sites.get(site)
        if subjects is None:
            raise WireError(ErrorCode.INVALID, f"storage does not serve site {site!r}")
        return site, subjects

    def _namespace(self, subject: str) -> tuple[str, str]:
        """(the persona its rows are kept under, skill): the room's own unless
        the persona shares the skill across rooms. Worked out once per
        subject: it depends on nothing but the subject and the settings."""
        found = self._namespaces.get(subject)
        if found is not None:
            return found
        site, subjects = self._site(subject)
        try:
            persona, skill = m.kv_namespace(subjects, subject)
            self.served.require(persona)
            found = self.scopes.settings_persona(site, persona, skill), skill
        except (InvalidToken, ScopeError) as exc:
            raise WireError(ErrorCode.INVALID, str(exc)) from None
        if len(self._namespaces) >= NAMESPACES_KEPT:
            self._namespaces.clear()
        self._namespaces[subject] = found
        return found

    async def kv_get(self, req: m.KvGet, subject: str) -> m.KvValue:
        persona, skill = self._namespace(subject)
        check_key(req.key)
        return m.KvValue(key=req.key, value=await self.kv.get(persona, skill, req.key))

    async def kv_set(self, req: m.KvSet, subject: str) -> Ok:
        persona, skill = self._namespace(subject)
        check_key(req.key)
        check_text(req.value)
        await self.kv.set(persona, skill, req.key, req.value, self.clock())
        return OK

    async def kv_list(self, req: m.KvList, subject: str) -> m.KvItems:
        persona, skill = self._namespace(subject)
        check_prefix(req.prefix)
        async with self.store.transaction(persona) as conn:
            found = settings.items(conn, persona, skill, req.prefix, req.after)
            items, left_out = await fill_page(found, json_size)
        return m.KvItems(items=items, next_after=items[-1][0] if left_out is not None else None)

    async def kv_delete(self, req: m.KvDelete, subject: str) -> m.KvDeleted:
        persona, skill = self._namespace(subject)
        check_key(req.key)
        return m.KvDeleted(deleted=await self.kv.delete(persona, skill, req.key))

    # -- schema versions ---------------------------------------------------------
    async def schema_get(self, req: m.SchemaGet, subject: str) -> m.SchemaVersion:
        persona, skill = self._namespace(subject)
        async with self.store.transaction(persona) as conn:
            version = await schema_versions.get(conn, persona, skill)
        return m.SchemaVersion(version=version)

    async def schema_set(self, req: m.SchemaSet, subject: str) -> Ok:
        persona, skill = self._namespace(subject)
        async with self.store.transaction(persona, write=True) as conn:
            await schema_versions.put(conn, persona, skill, req.version, self.clock())
        return Ok()

    # -- sessions ----------------------------------------------------------------
    def _persona(self, subject: str) -> str:
        """The persona a room's conversations are kept under."""
        site, subjects = self._site(subject)
        try:
            persona = m.sessions_persona(subjects, subject)
            self.served.require(persona)
            return self.scopes.sessions_persona(site, persona)
        except (InvalidToken, ScopeError) as exc:
            raise WireError(ErrorCode.INVALID, str(exc)) from None

    async def session_start(self, req: m.SessionStart, subject: str) -> m.SessionStarted:
        persona = self._persona(subject)
        async with self.store.transaction(persona, write=True) as conn:
            session_id, resumed = await sessions.start(conn, persona, self.clock(), req.fresh)
        return m.SessionStarted(session_id=session_id, resumed=resumed)

    async def session_record_turn(self, req: m.SessionRecordTurn, subject: str) -> Ok:
        persona = self._persona(subject)
        check_text(req.text, "text")
        async with self.store.transaction(persona, write=True) as conn:
            idx = await sessions.record_turn(
                conn, persona, req.session_id, req.role, req.text, req.turn_id, self.clock(), req.record_id
            )
        if idx is None:
            raise WireError(ErrorCode.NOT_FOUND, f"no session {req.session_id} for persona {persona}")
        return Ok()

    async def session_end(self, req: m.SessionEnd, subject: str) -> Ok:
        persona = self._persona(subject)
        if req.summary is not None:
            check_text(req.summary, "summary")
        async with self.store.transaction(persona, write=True) as conn:
            found = await sessions.end(conn, persona, req.session_id, req.summary, self.clock())
        if not found:
            raise WireError(ErrorCode.NOT_FOUND, f"no session {req.session_id} for persona {persona}")
        return Ok()

    async def session_list(self, req: m.SessionList, subject: str) -> m.SessionInfos:
        persona = self._persona(subject)
        async with self.store.transaction(persona) as conn:
            found = await sessions.newest(conn, persona, req.limit)
        infos: list[m.SessionInfo] = []
        used = 0
        for session in found:
            info = _info(session)
            size = json_size(info.model_dump())
            if infos and used + size > m.REPLY_PAGE_BYTES:
                return m.SessionInfos(sessions=infos, truncated=True)
            infos.append(info)
            used += size
        return m.SessionInfos(sessions=infos)

    async def session_get(self, req: m.SessionGet, subject: str) -> m.SessionDetail:
        persona = self._persona(subject)
        async with self.store.transaction(persona) as conn:
            session = await sessions.get(conn, persona, req.session_id)
            if session is None:
                raise WireError(ErrorCode.NOT_FOUND, f"no session {req.session_id} for persona {persona}")
            info = _info(session)
            found = sessions.all_turns(conn, persona, req.session_id, req.from_turn)
            turns, left_out = await fill_page(
                found, lambda t: json_size(vars(t)), used=json_size(info.model_dump())
            )
        return m.SessionDetail(
            **info.model_dump(exclude={"v"}),
            turns=[
                m.TurnRecord(idx=t.idx, role=t.role, text=t.text, turn_id=t.turn_id, ts=t.ts) for t in turns
            ],
            next_turn=left_out.idx if left_out is not None else None,
        )

    async def session_delete(self, req: m.SessionDelete, subject: str) -> m.SessionDeleted:
        persona = self._persona(subject)
        async with self.store.transaction(persona, write=True) as conn:
            deleted = await sessions.delete(conn, persona, req.session_id)
        return m.SessionDeleted(deleted=deleted)

    async def session_latest_summary(self, req: m.SessionLatestSummary, subject: str) -> m.Summary:
        persona = self._persona(subject)
        async with self.store.transaction(persona) as conn:
            summary = await sessions.latest_summary(conn, persona)
        return m.Summary(summary=summary)

    # -- export / import -----------------------------------------------------------
    async def admin_export(self, req: m.AdminExport, subject: str) -> m.AdminExportChunk:
        """Rows after the cursor, in (persona, kind, primary key) order."""
        start = transfer.Cursor.decode(req.cursor) if req.cursor is not None else None
        personas = await self.store.personas()
        page, left_out = await fill_page(
            self._export_rows(personas, start), lambda item: len(item[1].encode()), max_items=req.limit
        )
        next_cursor = page[-1][0].encode() if page and left_out is not None else None
        return m.AdminExportChunk(lines=[line for _, line in page], next_cursor=next_cursor)

    async def _export_rows(
        self, personas: list[str], start: transfer.Cursor | None
    ) -> AsyncIterator[tuple[transfer.Cursor, str]]:
        for persona in personas:
            if start is not None and persona < start.persona:
                continue
            async with self.store.transaction(persona) as conn:
                for kind in transfer.KINDS:
                    after: list[Any] | None = None
                    if start is not None and persona == start.persona:
                        if transfer.KINDS.index(kind) < transfer.KINDS.index(start.kind):
                            continue
                        if kind == start.kind:
                            after = list(start.after)
                    async for position, columns in rows.rows_after(conn, persona, kind, after):
                        cursor = transfer.Cursor(persona=persona, kind=kind, after=position)
                        yield cursor, transfer.to_line(kind, columns)

    async def admin_import(self, req: m.AdminImport, subject: str) -> m.AdminImported:
        parsed = [transfer.from_line(line, number) for number, line in enumerate(req.lines, req.first_line)]
        by_persona: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
        for row in parsed:
            by_persona[row.persona][row.kind].append(transfer.columns(row))
        try:
            for persona, kinds in by_persona.items():
                async with self.store.transaction(persona, write=True) as conn:
                    for kind in transfer.KINDS:
                        await rows.write(conn, kind, kinds.get(kind, []))
        finally:
            self.kv.forget_all()  # settings rows changed underneath the cache (or may have)
        return m.AdminImported(imported=len(parsed))

    def endpoints(self) -> list[Endpoint]:
        out: list[Endpoint] = []
        for site, s in self.sites.items():
            # Its own site's endpoints keep their plain names (nats micro info).
            suffix = "" if site == self.settings.site else f"-{site}"
            out += [replace(e, name=e.name + suffix) for e in self._endpoints(s)]
        return out

    def _endpoints(self, s: Subjects) -> list[Endpoint]:
        big = m.STORAGE_REQUEST_MAX_BYTES
        kv: dict[type[Request[Any]], Handler] = {
            m.KvGet: self.kv_get,
            m.KvSet: self.kv_set,
            m.KvList: self.kv_list,
            m.KvDelete: self.kv_delete,
        }
        schema: dict[type[Request[Any]], Handler] = {
            m.SchemaGet: self.schema_get,
            m.SchemaSet: self.schema_set,
        }
        session_ops: dict[type[Request[Any]], Handler] = {
            m.SessionStart: self.session_start,
            m.SessionRecordTurn: self.session_record_turn,
            m.SessionEnd: self.session_end,
            m.SessionList: self.session_list,
            m.SessionGet: self.session_get,
            m.SessionDelete: self.session_delete,
            m.SessionLatestSummary: self.session_latest_summary,
        }
        admin: dict[type[Request[Any]], Handler] = {
            m.AdminExport: self.admin_export,
            m.AdminImport: self.admin_import,
        }
        return [
            Endpoint("kv", s.storage_kv_all(), kv, concurrent=True, max_bytes=big),
            Endpoint("schema", s.storage_schema_all(), schema, concurrent=True),
            Endpoint("sessions", s.storage_sessions_all(), session_ops, concurrent=True, max_bytes=big),
            Endpoint("admin", s.storage_admin(), admin, max_bytes=m.STORAGE_REPLY_MAX_BYTES),
        ]


def _info(session: sessions.Session) -> m.SessionInfo:
    return m.SessionInfo(
        session_id=session.id,
        started_at=session.started_at,
        last_active_at=session.last_active_at,
        ended_at=session.ended_at,
        summary=session.summary,
        turn_count=session.turn_count,
    )
