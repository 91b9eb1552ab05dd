"""`FocusFollower`: what may be heard, for observers that hold nothing.

It follows focus.event.activity and keeps the latest `ActivityStatus` per
activity id. A snapshot keeps it honest, asked only when something says it
may be behind (the idle bus stays quiet, FOCUS-14): at start, on a gap in the
event sequence, when its connection came back (events may have been missed;
a local check of the client's reconnect count), when focus.event.queue
carries a sequence number below its own (focus started over: a focus
publishes one at start), and every `resync_every_s` (60 s) as a last resort.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from huxley_runtime.bus import settle
from huxley_runtime.focus_client.held import PendingState
from huxley_runtime.focus_client.tasks import cancel
from huxley_runtime.logging import get_logger
from huxley_runtime.rpc import request
from huxley_wire.errors import WireError
from huxley_wire.messages import focus as m
from huxley_wire.messages.focus import (
    ActivityEvent,
    ActivityMeta,
    Behavior,
    Channel,
    ContentType,
    EndReason,
    FocusState,
)
from huxley_wire.subjects import Subjects

log = get_logger(component="focus-client")


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
        holder: str,
        on_change: ChangeCallback | None = None,
        check_interval_s: float = 1.0,
        resync_every_s: float = 60.0,
        request_timeout_s: float = 2.0,
    ) -> None:
        """`check_interval_s`: how often the reconnect count is looked at (no
        bus traffic); `resync_every_s`: how often focus is asked regardless."""
        self.nc = nc
        self.subjects = subjects
        self.holder = holder  # whose focus.rpc subject the snapshot goes on (our identity)
        self.on_change = on_change
        self.check_interval_s = check_interval_s
        self.resync_every_s = resync_every_s
        self.request_timeout_s = request_timeout_s
        self.activities: dict[str, ActivityStatus] = {}
        self.seq = 0
        self.synced = asyncio.Event()
        self._behind = False  # a resync failed: the checker asks again at its pace
        self._sub: Subscription | None = None
        self._queue_sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._resyncing = False
        self._buffer: list[ActivityEvent] = []
        self._resync_lock = asyncio.Lock()
        self._gap_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(self.subjects.focus_event("activity"), cb=self._on_event)
        self._queue_sub = await self.nc.subscribe(self.subjects.focus_event("queue"), cb=self._on_queue)
        await settle(self.nc)
        with contextlib.suppress(WireError):
            await self.resync()  # focus may be down; the checker keeps trying
        self._task = asyncio.create_task(self._check(), name="focus-follower-check")

    async def stop(self) -> None:
        await cancel(self._task, self._gap_task)
        self._task = self._gap_task = None
        for sub in (self._sub, self._queue_sub):
            if sub is not None:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
        self._sub = self._queue_sub = None

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
                snap = await self._snapshot()
            except WireError:
                # Focus cannot answer: the events that came meanwhile are still
                # the freshest we have, so they count now, not when focus is back.
                self._resyncing = False
                buffered, self._buffer = self._buffer, []
                for event in buffered:
                    await self._apply(event)
                raise
            except BaseException:
                self._resyncing = False
                raise
            try:
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
                self._behind = False
            finally:
                self._resyncing = False
            self.synced.set()
            for event in buffered:
                await self._apply(event)

    async def _snapshot(self) -> m.Snapshot:
        subject = self.subjects.focus_rpc_of(self.holder)
        return await request(self.nc, subject, m.SnapshotRequest(), timeout=self.request_timeout_s)

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
        if gap:
            self._resync_soon()

    async def _on_queue(self, msg: Msg) -> None:
        """A queue event carries focus's sequence number: one below ours means
        focus started over (its first event would look old to `_apply`)."""
        try:
            event = m.QueueEvent.model_validate_json(msg.data)
        except Exception as exc:
            log.warning("bad_queue_event", error=str(exc)[:200])
            return
        if event.seq < self.seq and not self._resyncing:
            self._resync_soon()

    def _resync_soon(self) -> None:
        if self._gap_task is None or self._gap_task.done():
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
            self._behind = True
            log.info("focus_resync_failed", code=str(exc.code), error=exc.message)

    def _reconnects(self) -> int:
        return int(self.nc.stats.get("reconnects", 0))

    async def _check(self) -> None:
        """Catch up after a reconnect even if no event comes (a local look at
        the client's counter), or not synced yet; ask focus only now and then."""
        loop = asyncio.get_running_loop()
        reconnects = self._reconnects()
        asked_at = loop.time()
        while True:
            await asyncio.sleep(self.check_interval_s)
            now = self._reconnects()
            due = loop.time() - asked_at >= self.resync_every_s
            if now == reconnects and self.synced.is_set() and not due and not self._behind:
                continue
            reconnects, asked_at = now, loop.time()
            if not self.synced.is_set() or self._behind:
                await self._resync_quietly()  # focus was not there at start, or a resync failed
                continue
            try:
                snap = await self._snapshot()
            except WireError:
                continue
            if snap.seq != self.seq:
                await self._resync_quietly()


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
