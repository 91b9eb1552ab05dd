"""`FocusClient`: a holder's link to focus (notifications, the lease, requests).

See the package docstring for what a holder gets; `notices.py` delivers to
its handler, `held.py` keeps what it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import cast

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import BaseModel

from huxley_runtime.bus import settle
from huxley_runtime.focus_client.held import HeldActivity, Holdings, PendingState
from huxley_runtime.focus_client.notices import NOTIFICATIONS, FocusHandler, Inbox
from huxley_runtime.focus_client.tasks import cancel, encode_error, loop_now, respond
from huxley_runtime.logging import get_logger
from huxley_runtime.retry import FOREVER, IDEMPOTENT, RetryPolicy, with_policy
from huxley_runtime.rpc import request
from huxley_wire.codec import Ok, Request, encode
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages import focus as m
from huxley_wire.messages.focus import (
    ActivityMeta,
    Channel,
    ContentType,
    EndReason,
    InjectPriority,
)
from huxley_wire.subjects import Subjects

log = get_logger(component="focus-client")

# FOCUS-14: focus gives up a holder 3 s after its last word while it holds an
# activity, 30 s after while it holds nothing; renew three times within each.
RENEW_INTERVAL_S = 1.0
# After a renew focus did not answer, the next comes this soon, doubling up to
# the fast clock: at `huxley up` focus starts beside its holders, and waiting
# the whole fast interval left each holder unleased (so its service
# unhealthy) up to a second after focus was there.
CATCH_UP_FIRST_S = 0.05
IDLE_RENEW_INTERVAL_S = 10.0
REQUEST_TIMEOUT_S = 5.0  # focus answers after every holder acked; a dead one costs it ~1 s
PATIENCE_HOOK_TIMEOUT_S = 2.0  # under focus's own limit, so our ack still counts


class FocusClient:
    """One holder's activities, lease and requests (see the package docstring)."""

    def __init__(
        self,
        nc: Client,
        subjects: Subjects,
        holder: str,
        handler: FocusHandler,
        *,
        renew_interval_s: float = RENEW_INTERVAL_S,
        idle_renew_interval_s: float = IDLE_RENEW_INTERVAL_S,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
        patience_hook_timeout_s: float = PATIENCE_HOOK_TIMEOUT_S,
        ready: bool | None = None,
    ) -> None:
        """`ready`: what every renew states (`Renew.ready`); the bridge starts
        with False and calls `set_ready` as its model session comes and goes.
        None states nothing (focus takes it as ready)."""
        self.nc = nc
        self.subjects = subjects
        self.holder = holder
        self.handler = handler
        self.renew_interval_s = renew_interval_s  # while it holds (or acquires) something
        self.idle_renew_interval_s = max(idle_renew_interval_s, renew_interval_s)
        self.request_timeout_s = request_timeout_s
        self.patience_hook_timeout_s = patience_hook_timeout_s
        self.held = Holdings()
        self._inbox = Inbox(handler, holder)
        self._sub: Subscription | None = None
        self._deliverer: asyncio.Task[None] | None = None
        self._lease: asyncio.Task[None] | None = None
        self._lease_wake = asyncio.Event()  # it started holding: renew on the fast clock
        self._renewed_at = float("-inf")  # loop time the last renew was sent
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._acquiring = 0  # acquires in flight
        self._acquire_count = 0  # acquires ever started
        self.lease_ok = False  # the last renew got an answer
        self._misses = 0  # renews in a row that got no answer
        self._ready = ready
        self._notify_subject = subjects.focus_notify(holder)  # validates the holder token

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Serve notifications (live on the server before this returns) and
        start the lease."""
        self._sub = await self.nc.subscribe(self._notify_subject, cb=self._on_notify)
        await settle(self.nc)
        self._deliverer = asyncio.create_task(self._inbox.run(), name=f"focus-deliver-{self.holder}")
        # One renew now, so focus knows this holder when start() returns (if
        # focus is up; otherwise the loop keeps trying).
        await self._renew()
        self._lease = asyncio.create_task(self._keep_lease(), name=f"focus-lease-{self.holder}")

    async def stop(self, *, release: bool = True) -> None:
        """Release what it still holds (best effort), then stop serving."""
        await cancel(self._lease, *self._side_tasks)
        self._lease = None
        if release:
            for activity_id in list(self.held.activities):
                with contextlib.suppress(WireError):
                    await self._request(m.Release(holder=self.holder, activity_id=activity_id), timeout=1.0)
                self.held.forget(activity_id)
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
        if self._deliverer is not None:  # let the handler hear what already came (those NONEs)
            await self._inbox.drain(2.0)
        await cancel(self._deliverer)
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
        self._lease_wake.set()
        try:
            reply = await self._request(req)
        finally:
            self._acquiring -= 1
        self.held.acquired(reply.activity_id, channel, interface, reply.state, req.meta, loop_now())
        return reply

    async def release(self, activity_id: str, reason: EndReason = EndReason.RELEASED) -> None:
        """Give an activity up (a claim's natural end: `released`; a broken
        one: `error`). WireError `not_holder` if it is not ours (any more)."""
        await self._retrying(m.Release(holder=self.holder, activity_id=activity_id, reason=reason))
        self.held.forget(activity_id)

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
        """inject_turn. Retried until focus acknowledges it (FOREVER), with
        the same inject_id, so it is accepted exactly once (a retry that
        reaches focus twice is answered `duplicate`)."""
        req = m.Inject(
            inject_id=inject_id or f"i-{secrets.token_hex(8)}",
            prompt=prompt,
            priority=priority,
            dedup_key=dedup_key,
            ttl_s=ttl_s,
            wait=wait,
            skill=skill,
        )
        return await self._retrying(req, policy=FOREVER)

    async def turn_end(
        self, activity_id: str, *, inject_id: str | None = None, pending: m.PendingEffect | None = None
    ) -> m.TurnEnded:
        """A turn's barrier (see docs/protocol.md); safe to retry."""
        req = m.TurnEnd(holder=self.holder, activity_id=activity_id, inject_id=inject_id, pending=pending)
        reply = await self._retrying(req)
        self.held.forget(activity_id)
        return reply

    async def snapshot(self) -> m.Snapshot:
        return await self._request(m.SnapshotRequest())

    @property
    def ready(self) -> bool | None:
        return self._ready

    async def set_ready(self, ready: bool) -> None:
        """State whether this holder can do its part now (the bridge: its model
        session is up, so an injected turn can be spoken). A change is renewed
        at once, so focus holds injects back (or fires them) without waiting
        for the next heartbeat."""
        if ready == self._ready:
            return
        self._ready = ready
        if self._lease is not None:
            await self._renew()

    def state_of(self, activity_id: str) -> PendingState | None:
        return self.held.state_of(activity_id)

    @property
    def activities(self) -> dict[str, HeldActivity]:
        return self.held.activities

    # -- notifications ---------------------------------------------------------------------
    async def _on_notify(self, msg: Msg) -> None:
        """Every request on focus.notify.<holder> gets an answer: `ok`, or the
        error envelope for anything that is not a notification."""
        try:
            note = NOTIFICATIONS.decode(msg.data)
        except WireError as exc:
            await self._reject(msg, exc)
            return
        except (RecursionError, ValueError) as exc:  # nesting or an integer past the decoder's limits
            await self._reject(msg, WireError(ErrorCode.BAD_JSON, f"payload cannot be decoded: {exc!r:.200}"))
            return
        except Exception as exc:
            await self._reject(msg, WireError(ErrorCode.INVALID, f"payload rejected: {exc!r:.200}"))
            return
        try:
            await self._take(note)
        except Exception as exc:  # our own failure: still answer, and go on
            log.exception("notification_failed", holder=self.holder, op=note.op)
            await respond(msg, encode_error(WireError(ErrorCode.INTERNAL, repr(exc)[:200])))
            return
        await respond(msg, encode(Ok()))

    async def _take(self, note: Request[Ok]) -> None:
        if isinstance(note, m.FocusChange):
            if note.state is m.FocusState.NONE and self.held.ended(note.activity_id):
                return  # a redelivered NONE (focus retries one we acked late): heard already
            holding = bool(self.held.activities)
            self.held.learn(note, loop_now())
            if not holding and self.held.activities:
                self._lease_wake.set()  # focus gave us something: its 3 s lease runs
            self._inbox.put(note)
        elif isinstance(note, m.EffectDropped):
            self._inbox.put(note)
        elif isinstance(note, m.PatienceExpired):
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._inbox.put(note, done)
            try:
                await asyncio.wait_for(asyncio.shield(done), self.patience_hook_timeout_s)
            except TimeoutError:
                log.warning("patience_hook_slow", holder=self.holder, activity=note.activity_id)

    async def _reject(self, msg: Msg, exc: WireError) -> None:
        log.warning("bad_notification", holder=self.holder, code=str(exc.code), error=exc.message[:300])
        await respond(msg, encode_error(exc))

    # -- the lease -----------------------------------------------------------------------------
    def _interval(self) -> float:
        """Fast while holding or acquiring, and while focus does not answer (so
        a restarted focus hears of us at once: sooner just after a miss);
        slow otherwise."""
        if self._misses:
            return min(CATCH_UP_FIRST_S * 2.0 ** (self._misses - 1), self.renew_interval_s)
        fast = bool(self.held.activities) or self._acquiring > 0 or not self.lease_ok
        return self.renew_interval_s if fast else self.idle_renew_interval_s

    async def _keep_lease(self) -> None:
        """Renew every `renew_interval_s` while holding something, every
        `idle_renew_interval_s` otherwise; starting to hold cuts a slow wait short."""
        while True:
            wait = self._renewed_at + self._interval() - loop_now()
            if wait <= 0:
                await self._renew()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lease_wake.wait(), wait)
            self._lease_wake.clear()

    async def _renew(self) -> None:
        sent_at = loop_now()
        self._renewed_at = sent_at
        acquires_before = self._acquire_count
        try:
            renew = m.Renew(holder=self.holder, ready=self._ready)
            reply = await self._request(renew, timeout=self.renew_interval_s * 2)
        except WireError as exc:
            if self.lease_ok:
                log.warning("focus_renew_failed", holder=self.holder, code=str(exc.code), error=exc.message)
            self.lease_ok = False
            self._misses += 1
            return
        self.lease_ok = True
        self._misses = 0
        quiet = self._acquiring == 0 and self._acquire_count == acquires_before
        self._reconcile(reply.activity_ids, sent_at, release_unknown=quiet)

    def _reconcile(self, listed_ids: list[str], sent_at: float, *, release_unknown: bool) -> None:
        found = self.held.reconcile(listed_ids, sent_at, release_unknown=release_unknown)
        for lost in found.lost:
            # Focus let it go while we were not listening (lease lost): stop it.
            log.warning("focus_activity_lost", holder=self.holder, activity=lost.activity_id)
            self._inbox.put(lost)
        for activity_id in found.unknown:  # a previous incarnation's
            log.warning("focus_activity_unknown", holder=self.holder, activity=activity_id)
            task = asyncio.create_task(self._release_quietly(activity_id))
            self._side_tasks.add(task)
            task.add_done_callback(self._side_tasks.discard)

    async def _release_quietly(self, activity_id: str) -> None:
        with contextlib.suppress(WireError):
            await self._request(m.Release(holder=self.holder, activity_id=activity_id))

    # -- requests ---------------------------------------------------------------------------------
    async def _request[M: BaseModel](self, req: Request[M], *, timeout: float | None = None) -> M:
        return await request(
            self.nc, self.subjects.focus_rpc_of(self.holder), req, timeout=timeout or self.request_timeout_s
        )

    async def _retrying[M: BaseModel](self, req: Request[M], *, policy: RetryPolicy = IDEMPOTENT) -> M:
        """Retry while focus is unavailable or slow (each attempt briefly: an
        observer on the subject turns a dead focus into timeouts, see
        huxley_runtime.retry). A `not_holder` on a retry of `release` means
        an earlier attempt already did it."""
        retried = False

        async def attempt(timeout_s: float) -> M:
            try:
                return await self._request(req, timeout=timeout_s)
            except WireError as exc:
                if retried and isinstance(req, m.Release) and exc.code == ErrorCode.NOT_HOLDER:
                    return cast(M, Ok())  # an earlier attempt released it
                raise

        def note(retry: int, exc: BaseException, pause_s: float) -> None:
            nonlocal retried
            retried = True
            code = str(exc.code) if isinstance(exc, WireError) else type(exc).__name__
            log.info("focus_retry", holder=self.holder, op=req.op, attempt=retry, code=code)

        return await with_policy(policy, attempt, on_retry=note)
