"""Peers of the focus service for tests: a handler that records what a holder
was told, and a stand-in for the realtime bridge (holder `bridge`, serving
bridge.inject `run_inject`), so focus and skill-host tests drive injected turns
without a model session; tests/bridge and tests/e2e run the real bridge."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg

from huxley_runtime.bus import settle
from huxley_runtime.focus_client import FocusClient
from huxley_wire.codec import RequestTable, encode, encode_obj
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages.bridge import InjectAccepted, RunInject
from huxley_wire.messages.focus import FocusChange
from huxley_wire.subjects import Subjects


class Recorder:
    """An append-only log that tests can await conditions on."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = asyncio.Event()

    def add(self, item: Any) -> None:
        self.items.append(item)
        self._changed.set()

    async def wait_for(self, predicate: Callable[[Any], bool], timeout: float = 15.0) -> Any:
        """The first recorded item (past or future) matching `predicate`."""

        async def scan() -> Any:
            seen = 0
            while True:
                for item in self.items[seen:]:
                    if predicate(item):
                        return item
                seen = len(self.items)
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(scan(), timeout)


class RecordingHandler:
    """A FocusHandler that records every call as a tuple:
    ("focus", FocusChange) / ("patience", activity_id) / ("dropped", effect_id, reason)."""

    def __init__(self, on_patience: Callable[[str], Any] | None = None) -> None:
        self.log = Recorder()
        self.on_patience = on_patience

    async def on_focus(self, change: FocusChange) -> None:
        self.log.add(("focus", change))

    async def on_patience_expired(self, activity_id: str) -> None:
        self.log.add(("patience", activity_id))
        if self.on_patience is not None:
            result = self.on_patience(activity_id)
            if asyncio.iscoroutine(result):
                await result
        self.log.add(("patience_done", activity_id))

    async def on_effect_dropped(self, effect_id: str, reason: str) -> None:
        self.log.add(("dropped", effect_id, reason))

    def changes(self, activity_id: str | None = None) -> list[tuple[str, str | None]]:
        return [
            (c.state.value, c.reason.value if c.reason else None)
            for kind, c, *_ in self.log.items
            if kind == "focus" and (activity_id is None or c.activity_id == activity_id)
        ]

    async def wait_state(self, activity_id: str, state: str, timeout: float = 15.0) -> FocusChange:
        item = await self.log.wait_for(
            lambda i: i[0] == "focus" and i[1].activity_id == activity_id and i[1].state == state, timeout
        )
        return item[1]  # type: ignore[no-any-return]

    async def wait_kind(self, state: str, kind: str, timeout: float = 15.0) -> FocusChange:
        """The first change to `state` of an activity whose meta.kind is `kind`."""
        item = await self.log.wait_for(
            lambda i: i[0] == "focus" and i[1].state == state and i[1].meta.kind == kind, timeout
        )
        return item[1]  # type: ignore[no-any-return]


class BridgePeer:
    """Holder `bridge` plus a bridge.inject responder that accepts run_inject
    (idempotent on inject_id, like the real bridge) and records each one.

    `ready` is what its renews state (None: nothing, like a bridge that
    predates it). With `unavailable`, a run_inject it has not accepted before
    is answered `unavailable` after it renews not ready — a bridge that lost
    its model between a renew and the request."""

    def __init__(self, nc: Client, site: str, *, answer: bool = True, ready: bool | None = None) -> None:
        self.nc = nc
        self.subjects = Subjects(site)
        self.handler = RecordingHandler()
        self.client = FocusClient(nc, self.subjects, "bridge", self.handler, ready=ready)
        self.run_injects = Recorder()  # RunInject requests, retries included
        self.answer = answer
        self.unavailable = False
        self.refused = Recorder()  # RunInject requests answered `unavailable`
        self.accepted: set[str] = set()
        self.done: set[str] = set()
        self.heard: Callable[[RunInject], None] | None = None  # called as a run_inject arrives
        self._sub: Any = None
        self._table = RequestTable([RunInject])

    async def start(self) -> BridgePeer:
        self._sub = await self.nc.subscribe(self.subjects.bridge_inject(), cb=self._serve)
        await settle(self.nc)
        await self.client.start()
        return self

    async def stop(self) -> None:
        await self.client.stop()
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    async def _serve(self, msg: Msg) -> None:
        try:
            req = self._table.decode(msg.data)
        except WireError as exc:
            await msg.respond(encode_obj(exc.envelope()))
            return
        assert isinstance(req, RunInject)
        if self.heard is not None:
            self.heard(req)
        if self.unavailable and req.inject_id not in self.accepted:
            await self.client.set_ready(False)
            self.refused.add(req)
            error = WireError(ErrorCode.UNAVAILABLE, "the model is out of reach")
            await msg.respond(encode_obj(error.envelope()))
            return
        self.accepted.add(req.inject_id)
        first = not any(r.inject_id == req.inject_id for r in self.run_injects.items)
        self.run_injects.add(req)
        if not self.answer:
            return
        status = (
            "accepted" if first else ("already_done" if req.inject_id in self.done else "already_running")
        )
        await msg.respond(encode(InjectAccepted(inject_id=req.inject_id, status=status)))  # type: ignore[arg-type]

    async def next_inject(self, inject_id: str | None = None, timeout: float = 15.0) -> RunInject:
        item = await self.run_injects.wait_for(
            lambda r: inject_id is None or r.inject_id == inject_id, timeout
        )
        return item  # type: ignore[no-any-return]

    async def finish(self, run: RunInject) -> Any:
        """End the injected turn the way the bridge does: turn_end."""
        self.done.add(run.inject_id)
        return await self.client.turn_end(run.activity_id, inject_id=run.inject_id)
