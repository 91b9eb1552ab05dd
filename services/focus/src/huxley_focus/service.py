"""Focus bus adapter: focus.rpc.<holder> served by one serialized actor over the pure
core, notifications to holders, events, leases, persistence.

Each operation runs under one FIFO lock (the actor): the core decides, the
new state's KV write is handed to the connection (so the server has it
before any notice it covers: one connection keeps its order; PERF-11), the
effects are performed in order — every notification is a request to
focus.notify.<holder>, acked before the next goes out, and its ActivityEvent
is published just before it so audio-io gates a stream before its producer
hears — and only once the write is acknowledged is the caller answered.
An inject fired on a free floor tells nobody but the bridge, so there
`run_inject` goes out before the bridge's own notices (PERF-8). A ticker
takes the same lock for leases, patience and TTLs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from typing import Any

from pydantic import BaseModel

from huxley_focus.callers import CONTROL_HOLDERS, check_caller, holder_of
from huxley_focus.core import FocusCore
from huxley_focus.courier import Courier
from huxley_focus.effects import (
    DropEffect,
    Effect,
    InjectStatus,
    Notice,
    PatienceHook,
    QueueChanged,
    RunInject,
)
from huxley_focus.settings import FocusSettings
from huxley_focus.store import FocusStore
from huxley_runtime.retry import ANY_ERROR, FOREVER, RETRYABLE
from huxley_runtime.rpc import request, request_with_retry
from huxley_runtime.service import Endpoint, Handler, Service
from huxley_wire.codec import Ok, Request, encode
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages import focus as m
from huxley_wire.messages.bridge import RunInject as RunInjectRequest

# run_inject is idempotent on inject_id: retried while the inject is current,
# on anything but `unavailable` (the bridge's "not taken": back to the queue).
# A dead bridge behind an observer times out instead; its lease then ends the
# turn and puts the inject back (core._settle_current).
RUN_INJECT = FOREVER.but(retry_on=ANY_ERROR - {ErrorCode.UNAVAILABLE})
STORE_RETRY_S = 5.0
TICK_MAX_S = 1.0


class FocusService(Service):
    name = "focus"
    description = "Focus arbiter (channels, activities, leases) and inject scheduler"
    settings_class = FocusSettings
    settings: FocusSettings

    def __init__(self, settings: FocusSettings | None = None) -> None:
        super().__init__(settings)
        s = self.settings
        self.core = FocusCore(
            priorities=s.focus_priorities,
            duck_gain=s.focus_duck_gain,
            ramp_ms=s.focus_ramp_ms,
            lease_s=s.focus_lease_s,
            presence_s=s.focus_presence_s,
            interrupt_hold_s=s.focus_interrupt_hold_s,
        )
        self._actor = asyncio.Lock()
        self._wake = asyncio.Event()
        self._store: FocusStore | None = None
        self._saved: bytes | None = None
        self._runners: dict[str, asyncio.Task[None]] = {}
        self._courier = Courier(self._notify, self._holder_alive, self.spawn)

    # -- lifecycle ---------------------------------------------------------------------
    async def on_start(self) -> None:
        s = self.settings
        if s.focus_persist:
            self._store = FocusStore(
                self.nc, s.kv_bucket(), replicas=s.focus_kv_replicas, write_s=s.focus_store_write_s
            )
            if await self._store.open():
                async with self._actor:
                    await self._restore()
            else:
                self.log.warning("focus_store_unavailable", error=self._store.error)
                self.spawn(self._reopen_store(), name="focus-store")
        self.spawn(self._announce_start(), name="focus-start")
        self.spawn(self._ticker(), name="focus-ticker")

    async def _announce_start(self) -> None:
        """Say where the sequence stands: an observer ahead of it knows focus
        started over and resyncs (FocusFollower), with no periodic polling.
        Only once the endpoints answer: the resync it causes is a snapshot
        request, which would otherwise find no responder."""
        await self.ready.wait()
        async with self._actor:
            await self.nc.publish(self.subjects.focus_event("queue"), encode(self.core.queue_event()))

    async def on_stop(self) -> None:
        for task in list(self._runners.values()):
            task.cancel()

    def health(self) -> tuple[str, dict[str, Any]]:
        now = time.time()
        detail: dict[str, Any] = {
            "activities": len(self.core.arbiter),
            "queue": len(self.core.queue),
            "current_inject": self.core.current.entry.inject_id if self.core.current else None,
            "holders": sorted(h for h, d in self.core.holders.items() if d > now),
            # Arbitration works without the bridge; only injects wait for it.
            "bridge": _bridge_state(self.core, now),
            "persisted": self._store is not None and self._store.ready,
        }
        if self._store is not None and not self._store.ready:
            detail["problem"] = self._store.error or "state store unavailable"
            return "degraded", detail
        return "ok", detail

    def endpoints(self) -> list[Endpoint]:
        handlers: dict[Any, Handler] = {
            m.Acquire: self._acquire,
            m.Release: self._release,
            m.Renew: self._renew,
            m.Interrupt: self._interrupt,
            m.StopForeground: self._stop_foreground,
            m.StopAll: self._stop_all,
            m.StopChannel: self._stop_channel,
            m.Inject: self._inject,
            m.TurnEnd: self._turn_end,
            m.SnapshotRequest: self._snapshot,
        }
        # One endpoint for every holder's subject; the subject says who acts.
        checked = {model: self._as_caller(handler) for model, handler in handlers.items()}
        # Concurrent dispatch + one FIFO lock: requests keep their arrival order,
        # and a snapshot need not wait behind a slow patience hook.
        return [Endpoint("rpc", self.subjects.focus_rpc_all(), checked, concurrent=True)]

    def _as_caller(self, handler: Handler) -> Handler:
        prefix = self.subjects.focus_rpc_all()[:-2]
        control = CONTROL_HOLDERS | {self.core.bridge_holder}

        async def checked(req: Any, subject: str) -> BaseModel:
            check_caller(holder_of(subject, prefix), req, control)
            return await handler(req, subject)

        return checked

    # -- the operations ------------------------------------------------------------------
    async def _acquire(self, req: m.Acquire, subject: str) -> BaseModel:
        return await self._apply(lambda now: self.core.acquire(req, now))

    async def _release(self, req: m.Release, subject: str) -> BaseModel:
        return await self._apply(lambda now: self.core.release(req, now))

    async def _renew(self, req: m.Renew, subject: str) -> BaseModel:
        reply = await self._apply(lambda now: self.core.renew(req.holder, now, req.ready))
        assert isinstance(reply, m.Renewed)
        late = [a for a in self._courier.undelivered(req.holder) if a not in reply.activity_ids]
        return m.Renewed(activity_ids=[*reply.activity_ids, *late]) if late else reply

    async def _interrupt(self, req: m.Interrupt, subject: str) -> BaseModel:
        return await self._apply(lambda now: self.core.interrupt(req, now))

    async def _stop_foreground(self, req: m.StopForeground, subject: str) -> BaseModel:
        return await self._apply(self.core.stop_foreground)

    async def _stop_all(self, req: m.StopAll, subject: str) -> BaseModel:
        return await self._apply(self.core.stop_all)

    async def _stop_channel(self, req: m.StopChannel, subject: str) -> BaseModel:
        return await self._apply(lambda now: self.core.stop_channel(req.channel, now))

    async def _inject(self, req: m.Inject, subject: str) -> BaseModel:
        return await self._apply(lambda now: self.core.inject(req, now))

    async def _turn_end(self, req: m.TurnEnd, subject: str) -> BaseModel:
        return await self._apply(lambda now: self.core.turn_end(req, now))

    async def _snapshot(self, req: m.SnapshotRequest, subject: str) -> BaseModel:
        # Read without the lock: state is consistent between awaits, and its
        # seq tells a follower which events it already reflects.
        return self.core.snapshot()

    async def _apply(self, operation: Any) -> BaseModel:
        """Run one operation as the actor: decide, persist, perform, reply."""
        async with self._actor:
            reply, effects = operation(time.time())
            await self._commit(effects)
        self._wake.set()
        return reply  # type: ignore[no-any-return]

    async def _commit(self, effects: list[Effect]) -> None:
        """Persist and perform one decision (the caller holds the actor). The
        write is started first and runs up to its wait for the server's ack,
        so its bytes precede every notice in the connection's buffer: a
        focus killed after any notice left cannot lose the state it covers.
        The ack is awaited only before the caller is answered (PERF-11)."""
        saving = self.spawn(self._persist(), name="focus-persist", eager=True)
        await self._perform(effects)
        await saving

    # -- effects -------------------------------------------------------------------------
    async def _perform(self, effects: list[Effect]) -> None:
        s = self.settings
        silent: set[str] = set()  # holders that missed an ack in this batch
        queue_changed = False
        # An inject fired on a free floor tells no one but the bridge, which takes
        # the floor from run_inject itself (it ignores its own FOREGROUND): its
        # notices go out after run_inject, in their order, instead of before it.
        bridge_only = _tells_only(effects, self.core.bridge_holder)
        if bridge_only:
            # run_inject leads even the broadcast events, which only tell watchers:
            # one yield lets nats-py's flusher put the state write and run_inject on
            # the socket before the rest is encoded (PERF-15).
            for effect in effects:
                if isinstance(effect, RunInject):
                    self._start_runner(effect)
            await asyncio.sleep(0)
        held: list[tuple[m.FocusChange, bool]] = []
        for effect in effects:
            if isinstance(effect, Notice):
                event = effect.event
                await self.nc.publish(self.subjects.focus_event("activity"), encode(event))
                change = m.FocusChange(
                    seq=event.seq,
                    activity_id=event.activity_id,
                    channel=event.channel,
                    interface=event.interface,
                    state=event.state,
                    behavior=event.behavior,
                    gain=event.gain,
                    ramp_ms=event.ramp_ms,
                    reason=event.reason,
                    meta=event.meta,
                    replaces=event.replaces,
                )
                terminal = event.state is m.FocusState.NONE
                if bridge_only:
                    held.append((change, terminal))
                else:
                    await self._tell(
                        event.holder, change, s.focus_notify_timeout_s, silent, terminal=terminal
                    )
            elif isinstance(effect, PatienceHook):
                hook = m.PatienceExpired(activity_id=effect.activity_id)
                await self._tell(effect.holder, hook, s.focus_patience_hook_timeout_s, silent)
            elif isinstance(effect, DropEffect):
                dropped = m.EffectDropped(effect_id=effect.effect_id, reason=effect.reason)
                await self._tell(effect.holder, dropped, s.focus_notify_timeout_s, silent)
            elif isinstance(effect, InjectStatus):
                await self.nc.publish(self.subjects.focus_event("inject"), encode(effect.event))
            elif isinstance(effect, RunInject) and not bridge_only:
                self._start_runner(effect)
            elif isinstance(effect, QueueChanged):
                queue_changed = True
        for change, terminal in held:
            await self._tell(
                self.core.bridge_holder, change, s.focus_notify_timeout_s, silent, terminal=terminal
            )
        if queue_changed:
            await self.nc.publish(self.subjects.focus_event("queue"), encode(self.core.queue_event()))

    async def _tell(
        self,
        holder: str,
        message: Request[Ok],
        timeout: float,
        silent: set[str],
        *,
        terminal: bool = False,
    ) -> None:
        """One notification, acked or given up on; one holder's silence never
        stops the others. A holder that missed an ack is skipped for the rest
        of the operation (its lease decides its fate) — except for a terminal
        NONE, which the courier keeps redelivering while the holder is alive."""
        if self._courier.has_backlog(holder):
            self._courier.later(holder, message)  # behind what it has not acked yet
            return
        if holder in silent:
            if terminal:
                self._courier.later(holder, message)
            else:
                self.log.warning("notify_skipped", holder=holder, op=message.op)
            return
        try:
            await request(self.nc, self.subjects.focus_notify(holder), message, timeout=timeout)
        except WireError as exc:
            self.log.warning(
                "notify_unacked", holder=holder, op=message.op, code=str(exc.code), error=exc.message
            )
            if exc.code in RETRYABLE:
                silent.add(holder)
                if terminal:
                    self._courier.later(holder, message)
        except Exception as exc:  # a bus failure must not break the actor
            silent.add(holder)
            self.log.warning("notify_failed", holder=holder, op=message.op, error=repr(exc))
            if terminal:
                self._courier.later(holder, message)

    async def _notify(self, holder: str, message: Request[Ok]) -> None:
        """The courier's send: one attempt, WireError unless acked."""
        timeout = self.settings.focus_notify_timeout_s
        await request(self.nc, self.subjects.focus_notify(holder), message, timeout=timeout)

    def _holder_alive(self, holder: str) -> bool:
        # The ticker removes a holder whose lease ran out; until then it counts.
        return holder in self.core.leases.heard

    def _start_runner(self, cmd: RunInject) -> None:
        running = self._runners.get(cmd.inject_id)
        if running is not None and not running.done():
            return
        # Eager: run_inject is on the wire before the operation's later events and its reply.
        task = self.spawn(self._run_inject(cmd), name=f"run-inject-{cmd.inject_id}", eager=True)
        if task.done():
            return
        self._runners[cmd.inject_id] = task
        task.add_done_callback(lambda _t: self._runners.pop(cmd.inject_id, None))

    def _still_current(self, cmd: RunInject) -> bool:
        current = self.core.current
        return (
            current is not None
            and current.entry.inject_id == cmd.inject_id
            and (current.activity_id == cmd.activity_id)
        )

    async def _run_inject(self, cmd: RunInject) -> None:
        """Tell the bridge to run the turn, until it acks (it is idempotent on
        inject_id) or the inject stops being the current one."""
        message = RunInjectRequest(
            inject_id=cmd.inject_id, prompt=cmd.prompt, activity_id=cmd.activity_id, priority=cmd.priority
        )
        if not self._still_current(cmd):
            return

        def retry(attempt: int, exc: BaseException, pause_s: float) -> None:
            code = str(exc.code) if isinstance(exc, WireError) else type(exc).__name__
            self.log.warning(
                "run_inject_retry", inject=cmd.inject_id, attempt=attempt, code=code, error=str(exc)
            )

        try:
            reply = await request_with_retry(
                self.nc,
                self.subjects.bridge_inject(),
                message,
                policy=RUN_INJECT.but(attempt_timeout_s=self.settings.focus_run_inject_timeout_s),
                keep_going=lambda: self._still_current(cmd),
                on_retry=retry,
            )
        except WireError as exc:
            if exc.code != ErrorCode.UNAVAILABLE:
                return  # no longer the current inject: whatever ended it decides
            # Not taken (its model is out of reach, or no bridge answers):
            # back to the queue until the bridge renews ready again.
            self.log.warning("run_inject_unavailable", inject=cmd.inject_id, error=exc.message)
            await self._apply_effects(
                functools.partial(self.core.inject_unavailable, cmd.inject_id, cmd.activity_id)
            )
            return
        status = reply.status
        self.log.info("run_inject_acked", inject=cmd.inject_id, status=status)
        await self._apply_effects(
            functools.partial(self.core.inject_accepted, cmd.inject_id, cmd.activity_id, status)
        )

    async def _apply_effects(self, operation: Any) -> None:
        async with self._actor:
            await self._commit(operation(time.time()))
        self._wake.set()

    # -- time ------------------------------------------------------------------------------
    async def _ticker(self) -> None:
        while True:
            deadline = self.core.next_deadline()
            wait = TICK_MAX_S if deadline is None else min(TICK_MAX_S, max(0.0, deadline - time.time()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait + 0.005)
            self._wake.clear()
            try:
                async with self._actor:
                    effects = self.core.tick(time.time())
                    if effects:
                        await self._commit(effects)
            except Exception:
                self.log.exception("tick_failed")

    # -- persistence -----------------------------------------------------------------------
    async def _persist(self) -> None:
        if self._store is None or not self._store.ready:
            return
        data = self.core.dump().model_dump_json().encode()
        if data == self._saved:
            return
        if await self._store.save(data):
            self._saved = data

    async def _restore(self) -> None:
        """Load the persisted state and re-announce it (the caller holds the actor)."""
        assert self._store is not None
        saved = await self._store.load()
        if saved is None:
            return
        effects = self.core.load(saved, time.time())
        self.log.info(
            "focus_state_restored",
            activities=len(self.core.arbiter),
            queue=len(self.core.queue),
            current=self.core.current.entry.inject_id if self.core.current else None,
        )
        self._saved = self.core.dump().model_dump_json().encode()
        await self._perform(effects)

    async def _reopen_store(self) -> None:
        assert self._store is not None
        while not self._store.ready:
            await asyncio.sleep(STORE_RETRY_S)
            if not await self._store.open():
                continue
            async with self._actor:
                core = self.core
                # Started without the store: adopt what it holds only if we
                # have nothing of our own yet; otherwise ours is newer.
                if not len(core.arbiter) and not len(core.queue) and core.current is None:
                    await self._restore()
                await self._persist()
            self.log.info("focus_store_available", bucket=self._store.bucket)


def _tells_only(effects: list[Effect], bridge: str) -> bool:
    """The operation fires an inject, and every holder it tells is the bridge."""
    told = [e for e in effects if isinstance(e, Notice | PatienceHook | DropEffect)]
    fires = any(isinstance(e, RunInject) for e in effects)
    return fires and all(isinstance(e, Notice) and e.holder == bridge for e in told)


def _bridge_state(core: FocusCore, now: float) -> str:
    if not core.bridge_alive(now):
        return "absent: injects wait in the queue"
    return "renewing" if core.bridge_ready else "not ready (model unreachable): injects wait in the queue"
