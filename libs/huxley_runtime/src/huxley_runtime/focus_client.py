"""Talking to focus: `FocusClient` for holders, `FocusFollower` for observers.

A **holder** (the bridge, a skill-host, audio-io) owns activities. Its
`FocusClient`

- serves `focus.notify.<holder>`: `focus` and `effect_dropped` notifications
  are acked at once and handed to the handler one at a time, in arrival order
  (one queue); `patience_expired` goes through the same queue and is acked
  when the handler's `on_patience_expired` returned (or after a time limit),
  so the terminal NONE always comes after the hook;
- keeps the lease: `renew` every 0.5 s (focus drops a holder silent for 3 s)
  and reconciles with the reply — an activity focus no longer lists gets a
  synthesized NONE (`lease_expired`, `seq` 0) so the holder stops it; one
  focus lists that the client does not know (a previous incarnation's) is
  released;
- wraps every focus.rpc operation, retrying the idempotent ones (`inject`
  forever, with the same inject_id; `release` and `turn_end` for a while).

Notifications for activities the holder did not acquire itself (focus starts
a stream or claim for a skill-host at a turn's end, or an injected turn for
the bridge) reach the same handler; `meta` says what they are (`effect_id`,
`inject_id`).

An **observer** that only needs to know what may be heard (audio-io gating
output, the bridge watching COMMS) uses `FocusFollower`: it follows
focus.event.activity, keeps the latest state per activity id, and refreshes
from `snapshot` at start, whenever it sees a gap in the event sequence, and
every few seconds if its sequence number fell behind.

    class Book:
        async def on_focus(self, change: FocusChange) -> None: ...
        async def on_patience_expired(self, activity_id: str) -> None: ...
        async def on_effect_dropped(self, effect_id: str, reason: str) -> None: ...

    client = FocusClient(nc, Subjects(site), "skill-host-1a2b3c", Book())
    await client.start()
    granted = await client.acquire(Channel.CONTENT, "audiobooks", patience_ms=1_800_000)
    ...
    await client.stop()   # releases what it still holds
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol, cast

from nats.aio.client import Client
from nats.aio.msg import Msg
from pydantic import BaseModel

from huxley_runtime.bus import settle
from huxley_runtime.logging import get_logger
from huxley_runtime.rpc import RETRYABLE, request
from huxley_wire.codec import Ok, Request, RequestTable, encode, encode_obj
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages import focus as m
from huxley_wire.messages.focus import (
    ActivityEvent,
    ActivityMeta,
    Behavior,
    Channel,
    ContentType,
    EndReason,
    FocusChange,
    FocusState,
    InjectPriority,
)
from huxley_wire.subjects import Subjects

log = get_logger(component="focus-client")

NOTIFICATIONS = RequestTable([m.FocusChange, m.PatienceExpired, m.EffectDropped])
RENEW_INTERVAL_S = 0.5  # focus drops a holder after 3 s of silence
REQUEST_TIMEOUT_S = 5.0  # focus answers after every holder acked; a dead one costs it ~1 s
PATIENCE_HOOK_TIMEOUT_S = 2.0  # under focus's own limit, so our ack still counts
RETRY_FOR_S = 30.0
BACKOFF_S = (0.1, 0.2, 0.5, 1.0, 2.0)
ENDED_MEMORY = 512

PendingState = FocusState | Literal["pending"]


class FocusHandler(Protocol):
    """What a holder does with what focus tells it. Calls come one at a time,
    in the order focus sent them; an exception is logged and the next call
    still comes."""

    async def on_focus(self, change: FocusChange) -> None:
        """An activity's new state: FOREGROUND (play at `gain`), BACKGROUND
        (`may_duck`: keep playing at `gain`; `must_pause`: pause), NONE (stop
        for good; `reason` says why)."""

    async def on_patience_expired(self, activity_id: str) -> None:
        """The activity's patience ran out; run its hook. Its NONE follows.
        Schedule follow-up work (an inject) instead of awaiting it here."""

    async def on_effect_dropped(self, effect_id: str, reason: str) -> None:
        """A pending stream or claim of this holder will never start."""


@dataclass(frozen=True, slots=True)
class HeldActivity:
    """What the client knows about one of its activities."""

    activity_id: str
    channel: Channel
    interface: str
    state: PendingState
    meta: ActivityMeta
    known_since: float  # loop time when the client learnt of it


class FocusClient:
    def __init__(
        self,
        nc: Client,
        subjects: Subjects,
        holder: str,
        handler: FocusHandler,
        *,
        renew_interval_s: float = RENEW_INTERVAL_S,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
        patience_hook_timeout_s: float = PATIENCE_HOOK_TIMEOUT_S,
    ) -> None:
        self.nc = nc
        self.subjects = subjects
        self.holder = holder
        self.handler = handler
        self.renew_interval_s = renew_interval_s
        self.request_timeout_s = request_timeout_s
        self.patience_hook_timeout_s = patience_hook_timeout_s
        self.activities: dict[str, HeldActivity] = {}
        self._ended: OrderedDict[str, None] = OrderedDict()
        self._inbox: asyncio.Queue[tuple[str, Any, asyncio.Future[None] | None]] = asyncio.Queue()
        self._sub: Any = None
        self._deliverer: asyncio.Task[None] | None = None
        self._lease: asyncio.Task[None] | None = None
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._acquiring = 0  # acquires in flight
        self._acquire_count = 0  # acquires ever started
        self.lease_ok = False  # the last renew got an answer
        self._notify_subject = subjects.focus_notify(holder)  # validates the holder token

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Serve notifications (live on the server before this returns) and
        start the lease."""
        self._sub = await self.nc.subscribe(self._notify_subject, cb=self._on_notify)
        await settle(self.nc)
        self._deliverer = asyncio.create_task(self._deliver(), name=f"focus-deliver-{self.holder}")
        # One renew now, so focus knows this holder when start() returns (if
        # focus is up; otherwise the loop keeps trying).
        await self._renew()
        self._lease = asyncio.create_task(self._keep_lease(), name=f"focus-lease-{self.holder}")

    async def stop(self, *, release: bool = True) -> None:
        """Release what it still holds (best effort), then stop serving."""
        await _cancel(self._lease, *self._side_tasks)
        self._lease = None
        if release:
            for activity_id in list(self.activities):
                with contextlib.suppress(WireError):
                    await self._request(m.Release(holder=self.holder, activity_id=activity_id), timeout=1.0)
                self._forget(activity_id)
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
        if self._deliverer is not None:  # let the handler hear what already came (those NONEs)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._inbox.join(), 2.0)
        await _cancel(self._deliverer)
        self._deliverer = None

    # -- operations ----------------------------------------------------------------------
    async def acquire(
        self,
        channel: Channel,
        interface: str,
        *,
        content_type: ContentType = ContentType.NONMIXABLE,
        patience_ms: int = 0,
        meta: ActivityMeta | None = None,
    ) -> m.Acquired:
        """Ask for a channel. The reply says `foreground` or `pending` (silent
        under a higher foreground); later states arrive through the handler.
        COMMS holds one claim: a second gets WireError `claim_busy`."""
        req = m.Acquire(
            holder=self.holder,
            channel=channel,
            interface=interface,
            content_type=content_type,
            patience_ms=patience_ms,
            meta=meta or ActivityMeta(),
        )
        self._acquiring += 1
        self._acquire_count += 1
        try:
            reply = await self._request(req)
        finally:
            self._acquiring -= 1
        if reply.activity_id not in self.activities and reply.activity_id not in self._ended:
            self.activities[reply.activity_id] = HeldActivity(
                reply.activity_id, channel, interface, reply.state, req.meta, _now()
            )
        return reply

    async def release(self, activity_id: str, reason: EndReason = EndReason.RELEASED) -> None:
        """Give an activity up (a claim's natural end: `released`; a broken
        one: `error`). WireError `not_holder` if it is not ours (any more)."""
        await self._retrying(m.Release(holder=self.holder, activity_id=activity_id, reason=reason))
        self._forget(activity_id)

    async def interrupt(
        self, reason: EndReason = EndReason.USER_PTT, *, claim_grace_ms: int = 0
    ) -> m.Interrupted:
        """The user-PTT interrupt; answered after every holder acked."""
        return await self._request(m.Interrupt(reason=reason, claim_grace_ms=claim_grace_ms))

    async def stop_channel(self, channel: Channel) -> None:
        await self._request(m.StopChannel(channel=channel))

    async def stop_foreground(self) -> None:
        await self._request(m.StopForeground())

    async def stop_all(self) -> None:
        await self._request(m.StopAll())

    async def inject(
        self,
        prompt: str,
        *,
        priority: InjectPriority = InjectPriority.NORMAL,
        dedup_key: str | None = None,
        ttl_s: float | None = None,
        wait: bool = False,
        skill: str | None = None,
        inject_id: str | None = None,
    ) -> m.Injected:
        """inject_turn. Retried until focus acknowledges it, with the same
        inject_id, so it is accepted exactly once (a retry that reaches focus
        twice is answered `duplicate`)."""
        req = m.Inject(
            inject_id=inject_id or f"i-{secrets.token_hex(8)}",
            prompt=prompt,
            priority=priority,
            dedup_key=dedup_key,
            ttl_s=ttl_s,
            wait=wait,
            skill=skill,
        )
        return await self._retrying(req, retry_for_s=None)

    async def turn_end(
        self, activity_id: str, *, inject_id: str | None = None, pending: m.PendingEffect | None = None
    ) -> m.TurnEnded:
        """A turn's barrier (see docs/protocol.md); safe to retry."""
        req = m.TurnEnd(holder=self.holder, activity_id=activity_id, inject_id=inject_id, pending=pending)
        reply = await self._retrying(req)
        self._forget(activity_id)
        return reply

    async def snapshot(self) -> m.Snapshot:
        return await self._request(m.SnapshotRequest())

    def state_of(self, activity_id: str) -> PendingState | None:
        held = self.activities.get(activity_id)
        return held.state if held else None

    # -- notifications ---------------------------------------------------------------------
    async def _on_notify(self, msg: Msg) -> None:
        try:
            note = NOTIFICATIONS.decode(msg.data)
        except WireError as exc:
            log.warning("bad_notification", holder=self.holder, code=str(exc.code), error=exc.message)
            await _respond(msg, encode_obj(exc.envelope()))
            return
        if isinstance(note, m.FocusChange):
            self._learn(note)
            self._inbox.put_nowait(("focus", note, None))
        elif isinstance(note, m.EffectDropped):
            self._inbox.put_nowait(("dropped", note, None))
        elif isinstance(note, m.PatienceExpired):
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._inbox.put_nowait(("patience", note, done))
            try:
                await asyncio.wait_for(asyncio.shield(done), self.patience_hook_timeout_s)
            except TimeoutError:
                log.warning("patience_hook_slow", holder=self.holder, activity=note.activity_id)
        await _respond(msg, encode(Ok()))

    def _learn(self, change: FocusChange) -> None:
        if change.state is FocusState.NONE:
            self._forget(change.activity_id)
            return
        known = self.activities.get(change.activity_id)
        if known is not None:
            self.activities[change.activity_id] = replace(known, state=change.state)
        else:  # acquired on our behalf, or the notice beat the acquire reply
            self.activities[change.activity_id] = HeldActivity(
                change.activity_id, change.channel, change.interface, change.state, change.meta, _now()
            )

    def _forget(self, activity_id: str) -> None:
        self.activities.pop(activity_id, None)
        self._ended[activity_id] = None
        while len(self._ended) > ENDED_MEMORY:
            self._ended.popitem(last=False)

    async def _deliver(self) -> None:
        while True:
            kind, note, done = await self._inbox.get()
            try:
                if kind == "focus":
                    await self.handler.on_focus(note)
                elif kind == "dropped":
                    await self.handler.on_effect_dropped(note.effect_id, note.reason)
                elif kind == "patience":
                    await self.handler.on_patience_expired(note.activity_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("focus_handler_failed", holder=self.holder, kind=kind)
            finally:
                if done is not None and not done.done():
                    done.set_result(None)
                self._inbox.task_done()

    # -- the lease -----------------------------------------------------------------------------
    async def _keep_lease(self) -> None:
        while True:
            await asyncio.sleep(self.renew_interval_s)
            await self._renew()

    async def _renew(self) -> None:
        sent_at = _now()
        acquires_before = self._acquire_count
        try:
            reply = await self._request(m.Renew(holder=self.holder), timeout=self.renew_interval_s * 2)
        except WireError as exc:
            if self.lease_ok:
                log.warning("focus_renew_failed", holder=self.holder, code=str(exc.code), error=exc.message)
            self.lease_ok = False
            return
        self.lease_ok = True
        quiet = self._acquiring == 0 and self._acquire_count == acquires_before
        self._reconcile(reply.activity_ids, sent_at, release_unknown=quiet)

    def _reconcile(self, listed_ids: list[str], sent_at: float, *, release_unknown: bool) -> None:
        listed = set(listed_ids)
        for activity_id, held in list(self.activities.items()):
            if activity_id not in listed and held.known_since < sent_at:
                # Focus let it go while we were not listening (lease lost): stop it.
                log.warning("focus_activity_lost", holder=self.holder, activity=activity_id)
                self._forget(activity_id)
                self._inbox.put_nowait(("focus", _lost(held), None))
        if not release_unknown:
            return
        for activity_id in listed - set(self.activities):
            log.warning("focus_activity_unknown", holder=self.holder, activity=activity_id)
            self._forget(activity_id)
            task = asyncio.create_task(self._release_quietly(activity_id))
            self._side_tasks.add(task)
            task.add_done_callback(self._side_tasks.discard)

    async def _release_quietly(self, activity_id: str) -> None:
        with contextlib.suppress(WireError):
            await self._request(m.Release(holder=self.holder, activity_id=activity_id))

    # -- requests ---------------------------------------------------------------------------------
    async def _request[M: BaseModel](self, req: Request[M], *, timeout: float | None = None) -> M:
        return await request(
            self.nc, self.subjects.focus_rpc(), req, timeout=timeout or self.request_timeout_s
        )

    async def _retrying[M: BaseModel](self, req: Request[M], *, retry_for_s: float | None = RETRY_FOR_S) -> M:
        """Retry while focus is unavailable or slow. A `not_holder` on a retry
        of `release` means the first attempt already did it."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        attempt = 0
        while True:
            try:
                return await self._request(req)
            except WireError as exc:
                if attempt and isinstance(req, m.Release) and exc.code == ErrorCode.NOT_HOLDER:
                    return cast(M, Ok())  # the first attempt released it
                if exc.code not in RETRYABLE:
                    raise
                if retry_for_s is not None and loop.time() - started >= retry_for_s:
                    raise
                log.info("focus_retry", holder=self.holder, op=req.op, attempt=attempt, code=str(exc.code))
            await asyncio.sleep(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])
            attempt += 1


# -- observers ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ActivityStatus:
    """The latest known state of one activity, as an observer sees it."""

    activity_id: str
    channel: Channel
    interface: str
    holder: str
    content_type: ContentType
    state: PendingState
    behavior: Behavior | None
    gain: float
    ramp_ms: int
    meta: ActivityMeta
    seq: int
    reason: EndReason | None = None
    replaces: str | None = None

    @property
    def audible(self) -> bool:
        return self.gain > 0.0


ChangeCallback = Callable[[ActivityStatus], Awaitable[None] | None]


class FocusFollower:
    """The latest state of every activity, from focus.event.activity.

    `gain(activity_id)` is what a mixer should apply to that stream now: 1.0
    foreground, the ducked gain for a mixable background, 0 for everything
    else — including ids it has never heard of, so a late frame of a stream
    that ended (or never started) stays silent. `on_change` is called for each
    change, in order (NONE included); after a resync it is called for every
    activity whose state differs from what it had.
    """

    def __init__(
        self,
        nc: Client,
        subjects: Subjects,
        *,
        on_change: ChangeCallback | None = None,
        check_interval_s: float = 2.0,
        request_timeout_s: float = 2.0,
    ) -> None:
        self.nc = nc
        self.subjects = subjects
        self.on_change = on_change
        self.check_interval_s = check_interval_s
        self.request_timeout_s = request_timeout_s
        self.activities: dict[str, ActivityStatus] = {}
        self.seq = 0
        self.synced = asyncio.Event()
        self._sub: Any = None
        self._task: asyncio.Task[None] | None = None
        self._resyncing = False
        self._buffer: list[ActivityEvent] = []
        self._resync_lock = asyncio.Lock()
        self._gap_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(self.subjects.focus_event("activity"), cb=self._on_event)
        await settle(self.nc)
        with contextlib.suppress(WireError):
            await self.resync()  # focus may be down; the checker keeps trying
        self._task = asyncio.create_task(self._check(), name="focus-follower-check")

    async def stop(self) -> None:
        await _cancel(self._task, self._gap_task)
        self._task = self._gap_task = None
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    # -- queries ------------------------------------------------------------------------
    def state(self, activity_id: str) -> ActivityStatus | None:
        return self.activities.get(activity_id)

    def gain(self, activity_id: str) -> float:
        status = self.activities.get(activity_id)
        return status.gain if status is not None else 0.0

    @property
    def foreground(self) -> ActivityStatus | None:
        return next((a for a in self.activities.values() if a.state is FocusState.FOREGROUND), None)

    def in_channel(self, channel: Channel) -> list[ActivityStatus]:
        return [a for a in self.activities.values() if a.channel is channel]

    # -- keeping up -------------------------------------------------------------------------
    async def resync(self) -> None:
        """Replace what we know with focus's snapshot (events it already
        reflects are skipped)."""
        async with self._resync_lock:
            self._resyncing = True
            try:
                snap = await request(
                    self.nc,
                    self.subjects.focus_rpc(),
                    m.SnapshotRequest(),
                    timeout=self.request_timeout_s,
                )
                fresh = {
                    view.activity_id: _from_view(view, snap.seq)
                    for views in snap.channels.values()
                    for view in views
                }
                old = self.activities
                self.activities = fresh
                self.seq = snap.seq
                for activity_id, status in fresh.items():
                    if _differs(old.get(activity_id), status):
                        await self._changed(status)
                for activity_id, status in old.items():
                    if activity_id not in fresh:
                        await self._changed(_ended(status, snap.seq))
                buffered, self._buffer = self._buffer, []
            finally:
                self._resyncing = False
            self.synced.set()
            for event in buffered:
                await self._apply(event)

    async def _on_event(self, msg: Msg) -> None:
        try:
            event = ActivityEvent.model_validate_json(msg.data)
        except Exception as exc:
            log.warning("bad_activity_event", error=str(exc)[:200])
            return
        if self._resyncing:
            self._buffer.append(event)
            return
        await self._apply(event)

    async def _apply(self, event: ActivityEvent) -> None:
        if event.seq <= self.seq:
            return  # already reflected by a snapshot
        gap = self.seq > 0 and event.seq != self.seq + 1
        self.seq = event.seq
        status = _from_event(event)
        if event.state is FocusState.NONE:
            self.activities.pop(event.activity_id, None)
        else:
            self.activities[event.activity_id] = status
        await self._changed(status)
        if event.replaces and event.replaces in self.activities:
            # Its NONE follows; silence it now so the two never play together.
            replaced = self.activities.pop(event.replaces)
            await self._changed(_ended(replaced, event.seq, EndReason.REPLACED))
        if gap and (self._gap_task is None or self._gap_task.done()):
            self._gap_task = asyncio.create_task(self._resync_quietly())

    async def _changed(self, status: ActivityStatus) -> None:
        if self.on_change is None:
            return
        try:
            result = self.on_change(status)
            if result is not None:
                await result
        except Exception:
            log.exception("focus_follower_callback_failed", activity=status.activity_id)

    async def _resync_quietly(self) -> None:
        try:
            await self.resync()
        except WireError as exc:
            log.info("focus_resync_failed", code=str(exc.code), error=exc.message)

    async def _check(self) -> None:
        """Catch up after a reconnect or a focus restart even if no event comes."""
        while True:
            await asyncio.sleep(self.check_interval_s)
            try:
                snap = await request(
                    self.nc,
                    self.subjects.focus_rpc(),
                    m.SnapshotRequest(),
                    timeout=self.request_timeout_s,
                )
            except WireError:
                continue
            if snap.seq != self.seq:
                await self._resync_quietly()


# -- helpers ------------------------------------------------------------------------------------------
def _now() -> float:
    return asyncio.get_running_loop().time()


async def _cancel(*tasks: asyncio.Task[None] | None) -> None:
    live = [t for t in tasks if t is not None]
    for task in live:
        task.cancel()
    await asyncio.gather(*live, return_exceptions=True)


async def _respond(msg: Msg, data: bytes) -> None:
    if not msg.reply:
        return
    with contextlib.suppress(Exception):
        await msg.respond(data)


def _lost(held: HeldActivity) -> FocusChange:
    return FocusChange(
        seq=0,
        activity_id=held.activity_id,
        channel=held.channel,
        interface=held.interface,
        state=FocusState.NONE,
        behavior=Behavior.MUST_STOP,
        gain=0.0,
        ramp_ms=0,
        reason=EndReason.LEASE_EXPIRED,
        meta=held.meta,
    )


def _from_event(event: ActivityEvent) -> ActivityStatus:
    return ActivityStatus(
        activity_id=event.activity_id,
        channel=event.channel,
        interface=event.interface,
        holder=event.holder,
        content_type=event.content_type,
        state=event.state,
        behavior=event.behavior,
        gain=event.gain,
        ramp_ms=event.ramp_ms,
        meta=event.meta,
        seq=event.seq,
        reason=event.reason,
        replaces=event.replaces,
    )


def _from_view(view: m.ActivityView, seq: int) -> ActivityStatus:
    return ActivityStatus(
        activity_id=view.activity_id,
        channel=view.channel,
        interface=view.interface,
        holder=view.holder,
        content_type=view.content_type,
        state=view.state,
        behavior=view.behavior,
        gain=view.gain,
        ramp_ms=0,
        meta=view.meta,
        seq=seq,
    )


def _ended(status: ActivityStatus, seq: int, reason: EndReason | None = None) -> ActivityStatus:
    return replace(
        status,
        state=FocusState.NONE,
        behavior=Behavior.MUST_STOP,
        gain=0.0,
        seq=seq,
        reason=reason,
        ramp_ms=0,
    )


def _differs(old: ActivityStatus | None, new: ActivityStatus) -> bool:
    return old is None or (old.state, old.behavior, old.gain) != (new.state, new.behavior, new.gain)
