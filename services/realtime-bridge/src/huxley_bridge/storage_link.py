"""What the bridge keeps in storage: the stored conversation (start, one
line per transcript, the end with its summary), the last summary and
today's spend. Writes run in order in one lane; storage failing is a
warning, never a stop: the conversation goes on without it.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Literal

from nats.aio.client import Client

from huxley_bridge.cost import CostMeter
from huxley_bridge.lane import Lane
from huxley_runtime.logging import get_logger
from huxley_runtime.storage_client import SessionsClient, SettingsClient
from huxley_wire.errors import WireError
from huxley_wire.subjects import Subjects

log = get_logger(component="adapter")

COST_KEY = "cost_today"  # {"day": ..., "usd": ...} under the bridge's own storage namespace
STORAGE_NAMESPACE = "realtime-bridge"
STORAGE_DEADLINE_S = 5.0  # storage down: give up on a write after this (the turn goes on)


class StorageLink:
    def __init__(self, nc: Client, subjects: Subjects, persona: str) -> None:
        self.nc, self.subjects = nc, subjects
        self.sessions = SessionsClient(nc, subjects, persona, deadline_s=STORAGE_DEADLINE_S)
        self.cost_store = SettingsClient(
            nc, subjects, persona, STORAGE_NAMESPACE, deadline_s=STORAGE_DEADLINE_S
        )
        self.session_id: int | None = None
        self.fresh = False  # the next stored session must not resume the last (a reset)
        self._lane = Lane("storage")

    def start(self) -> None:
        self._lane.start()

    async def summary_of(self, persona: str) -> str | None:
        """Another persona's last summary (a switch); None if storage can't say."""
        try:
            return await SessionsClient(
                self.nc, self.subjects, persona, deadline_s=STORAGE_DEADLINE_S
            ).latest_summary()
        except WireError as exc:
            log.warning("summary_not_restored", persona=persona, code=str(exc.code), error=exc.message)
            return None

    def switch(self, persona: str) -> None:
        """Conversations are stored under another persona from the next session on
        (queued: the ending session is closed under its own). Today's spend stays
        where it is: it is the site's, not a persona's."""

        async def job() -> None:
            self.sessions = SessionsClient(self.nc, self.subjects, persona, deadline_s=STORAGE_DEADLINE_S)

        self._lane.put(job)

    async def stop(self) -> None:
        await self._lane.drain(STORAGE_DEADLINE_S)
        await self._lane.stop()

    async def restore(self, meter: CostMeter) -> str | None:
        """The last session's summary (returned) and today's spend (into `meter`), if storage answers."""
        summary: str | None = None
        try:
            summary = await self.sessions.latest_summary()
        except WireError as exc:
            log.warning("summary_not_restored", code=str(exc.code), error=exc.message)
        try:
            raw = await self.cost_store.get_setting(COST_KEY)
            if raw:
                saved = json.loads(raw)
                meter.restore(str(saved["day"]), float(saved["usd"]))
        except WireError as exc:
            log.warning("cost_not_restored", code=str(exc.code), error=exc.message)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("cost_unreadable", error=str(exc))
        return summary

    def _store(self, failure: str, write: Callable[[], Awaitable[object]]) -> None:
        """A write, in order behind the others; failing is a warning named `failure`."""

        async def job() -> None:
            try:
                await write()
            except WireError as exc:
                log.warning(failure, code=str(exc.code), error=exc.message)

        self._lane.put(job)

    def start_session(self) -> None:
        self._store("session_not_stored", self._start_session)

    async def _start_session(self) -> None:
        fresh, self.fresh = self.fresh, False
        self.session_id = (await self.sessions.start(fresh=fresh)).session_id

    def record(self, role: Literal["user", "assistant"], text: str, turn_id: str | None) -> None:
        record_id = secrets.token_hex(12)  # one id per line: storage keeps a retried line once

        async def write() -> None:
            if self.session_id is not None and text:
                await self.sessions.record_turn(self.session_id, role, text, turn_id, record_id)

        self._store("transcript_not_stored", write)

    def end_session(self, summary: str | None, failure: str = "summary_not_stored") -> None:
        self._store(failure, partial(self._end_session, summary))

    async def _end_session(self, summary: str | None) -> None:
        session_id, self.session_id = self.session_id, None
        if session_id is not None:
            await self.sessions.end(session_id, summary)

    def save_cost(self, meter: CostMeter) -> None:
        value = json.dumps({"day": meter.day, "usd": round(meter.usd, 6)})
        self._store("cost_not_stored", partial(self.cost_store.set_setting, COST_KEY, value))
