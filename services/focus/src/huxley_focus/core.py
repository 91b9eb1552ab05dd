"""The focus core: the arbiter plus the inject scheduler, leases and patience.

Pure and synchronous: every operation takes `now` (wall-clock seconds) and
returns its reply with the effects the adapter performs, in order, one
operation at a time (the serialized actor: no locks here). Leases: leases.py.

Scheduler rules (docs/protocol.md, "The inject scheduler"):

- An inject fires only when no turn is live (DIALOG empty), the queue is not
  held by a fresh user-PTT interrupt, the bridge holds a lease and did not
  say it is unready (it executes the turn: its model must be reachable), and
  the inject is eligible: not while a claim is live unless PREEMPT, and a
  NORMAL one not while content plays (foreground or ducked).
- Otherwise it is queued; a queued entry with the same dedup_key is replaced.
- A request whose dedup_key equals the inject now playing is dropped.
- At a turn's end (`turn_end`) the turn's stream or claim and the queue are
  weighed in `barrier.py`.
- After every other change (release, lease expiry, patience expiry, stop,
  a TTL, the bridge coming back or ready again) the first eligible queued
  inject fires.
- A bridge that answers run_inject `unavailable` did not take the turn (runs.py).
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable, Mapping

from huxley_focus import persist, runs, views
from huxley_focus.arbiter import Activity, Arbiter, Transition
from huxley_focus.barrier import after_turn
from huxley_focus.effects import DropEffect, Effect, PatienceHook, QueueChanged, RunInject, inject_status
from huxley_focus.injects import FiringInject, InjectEntry, InjectQueue
from huxley_focus.leases import Leases
from huxley_focus.state import SavedFocus
from huxley_wire.codec import Ok
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages import focus as m
from huxley_wire.messages.focus import (
    DEFAULT_CHANNEL_PRIORITY,
    ActivityKind,
    ActivityMeta,
    Channel,
    ContentType,
    EndReason,
    FocusState,
    InjectPriority,
)
from huxley_wire.subjects import InvalidToken, token

BRIDGE_HOLDER = "bridge"
INJECT_INTERFACE = "inject"
TURN_END_MEMO = 64

IdFactory = Callable[[str], str]


def random_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


class FocusCore:
    def __init__(
        self,
        *,
        priorities: Mapping[Channel, int] = DEFAULT_CHANNEL_PRIORITY,
        duck_gain: float = 0.3,
        ramp_ms: int = 100,
        lease_s: float = 3.0,
        presence_s: float = 30.0,
        interrupt_hold_s: float = 2.0,
        bridge_holder: str = BRIDGE_HOLDER,
        new_id: IdFactory = random_id,
    ) -> None:
        self.arbiter = Arbiter(priorities, duck_gain=duck_gain, ramp_ms=ramp_ms)
        self.queue = InjectQueue()
        self.current: FiringInject | None = None
        self.leases = Leases(lease_s, presence_s)  # leases.py: 3 s while holding, 30 s present
        self.bridge_ready = True  # the bridge's last stated readiness (Renew.ready)
        self.hold_until: float | None = None
        self.turn_ends: OrderedDict[str, m.TurnEnded] = OrderedDict()
        self.lease_s = lease_s
        self.interrupt_hold_s = interrupt_hold_s
        self.bridge_holder = bridge_holder
        self.new_id = new_id

    # -- facts the rules use ------------------------------------------------------------
    def turn_live(self) -> bool:
        return bool(self.arbiter.stacks[Channel.DIALOG])

    def claim_live(self) -> bool:
        return bool(self.arbiter.stacks[Channel.COMMS])

    def content_playing(self) -> bool:
        """Content is heard: it has the floor (also in the middle of a change,
        e.g. a claim just ended and the book is next), or it is ducked."""
        top = self.arbiter.foreground()
        if top is not None and top.channel is Channel.CONTENT:
            return True
        return any(
            a.content_type is ContentType.MIXABLE and a.state is FocusState.BACKGROUND
            for a in self.arbiter.stacks[Channel.CONTENT]
        )

    @property
    def holders(self) -> dict[str, float]:
        """Every known holder and its lease deadline."""
        return self.leases.deadlines(self.busy())

    def busy(self) -> set[str]:
        """Holders holding an activity they have heard of (the 3 s lease)."""
        return {a.holder for a in self.arbiter.activities() if a.announced}

    def bridge_alive(self, now: float) -> bool:
        return self.leases.alive(self.bridge_holder, now, self.busy())

    def executor(self, now: float) -> bool:
        """The bridge can run an injected turn: it renews and is ready."""
        return self.bridge_ready and self.bridge_alive(now)

    def held(self, now: float) -> bool:
        return self.hold_until is not None and now < self.hold_until

    def eligible(self, entry: InjectEntry, *, at_barrier: bool = False) -> bool:
        if entry.priority is not InjectPriority.PREEMPT and self.claim_live():
            return False
        return not (not at_barrier and entry.priority is InjectPriority.NORMAL and self.content_playing())

    def can_fire(self, now: float) -> bool:
        return self.current is None and not self.turn_live() and not self.held(now) and self.executor(now)

    # -- holders' operations ----------------------------------------------------------------
    def acquire(self, req: m.Acquire, now: float) -> tuple[m.Acquired, list[Effect]]:
        _check_holder(req.holder)
        self._touch(req.holder, now)
        if req.channel is Channel.COMMS and self.claim_live():
            holder = self.arbiter.stacks[Channel.COMMS][-1]
            raise WireError(ErrorCode.CLAIM_BUSY, f"COMMS already holds a claim ({holder.interface})")
        out: list[Effect] = []
        if req.channel is Channel.DIALOG:
            self.hold_until = None  # the user's turn arrived
        activity = self._new_activity(
            req.channel, req.interface, req.holder, req.content_type, req.patience_ms, req.meta, now
        )
        activity.announced = True  # the reply tells the holder
        tx = self.arbiter.begin(now)
        self.arbiter.push(tx, activity)
        self.commit(tx, out)
        return m.Acquired(activity_id=activity.activity_id, state=activity.state or "pending"), out

    def release(self, req: m.Release, now: float) -> tuple[Ok, list[Effect]]:
        self._touch(req.holder, now)
        activity = self._held_by(req.holder, req.activity_id)
        out: list[Effect] = []
        tx = self.arbiter.begin(now)
        self.arbiter.end(tx, activity, req.reason)
        self.commit(tx, out)
        return Ok(), out

    def renew(self, holder: str, now: float, ready: bool | None = None) -> tuple[m.Renewed, list[Effect]]:
        _check_holder(holder)
        self._touch(holder, now)
        if holder == self.bridge_holder:
            self.bridge_ready = ready is not False  # None: not stated, taken as ready
        out: list[Effect] = []
        self._drain(now, out)  # the bridge coming back (or ready again) may unblock the queue
        ids = [a.activity_id for a in self.arbiter.activities() if a.holder == holder and a.announced]
        return m.Renewed(activity_ids=ids), out

    # -- stops ------------------------------------------------------------------------
    def interrupt(self, req: m.Interrupt, now: float) -> tuple[m.Interrupted, list[Effect]]:
        """The user-PTT interrupt: content to NONE whatever its patience, a live
        claim ends, DIALOG released; the queue is kept (and held briefly for the
        user's turn unless a claim ended, since then no turn follows)."""
        claims = self.arbiter.in_channel(Channel.COMMS)
        age_ms: int | None = None
        if claims:
            started = claims[0].granted_at if claims[0].granted_at is not None else claims[0].acquired_at
            age_ms = max(0, round((now - started) * 1000))
            if req.claim_grace_ms and age_ms < req.claim_grace_ms:
                return m.Interrupted(ended_claim=False, claim_age_ms=age_ms, ignored=True), []
        out: list[Effect] = []
        tx = self.arbiter.begin(now)
        for channel in (Channel.CONTENT, Channel.COMMS, Channel.DIALOG):
            for activity in self.arbiter.in_channel(channel):
                self.arbiter.end(tx, activity, req.reason)
        stopped = [a.activity_id for a, _ in tx.ended]
        self.commit(tx, out, drain=False)  # the user speaks next, not the queue
        ended_claim = bool(claims)
        self.hold_until = None if ended_claim else now + self.interrupt_hold_s
        return m.Interrupted(ended_claim=ended_claim, claim_age_ms=age_ms, stopped=stopped), out

    def stop_foreground(self, now: float) -> tuple[Ok, list[Effect]]:
        out: list[Effect] = []
        foreground = self.arbiter.foreground()
        tx = self.arbiter.begin(now)
        if foreground is not None:
            self.arbiter.end(tx, foreground, EndReason.STOPPED)
        self.commit(tx, out)
        return Ok(), out

    def stop_all(self, now: float) -> tuple[Ok, list[Effect]]:
        out: list[Effect] = []
        tx = self.arbiter.begin(now)
        for activity in list(self.arbiter.activities()):
            self.arbiter.end(tx, activity, EndReason.STOPPED)
        # A clean slate: the queue is kept but waits a moment (like after an
        # interrupt) instead of filling the silence at once.
        self.commit(tx, out, drain=False)
        self.hold_until = now + self.interrupt_hold_s
        return Ok(), out

    def stop_channel(self, channel: Channel, now: float) -> tuple[Ok, list[Effect]]:
        out: list[Effect] = []
        tx = self.arbiter.begin(now)
        for activity in self.arbiter.in_channel(channel):
            self.arbiter.end(tx, activity, EndReason.STOPPED)
        self.commit(tx, out)
        return Ok(), out

    # -- the inject scheduler ------------------------------------------------------------
    def inject(self, req: m.Inject, now: float) -> tuple[m.Injected, list[Effect]]:
        if not self.queue.remember(req.inject_id):
            return m.Injected(inject_id=req.inject_id, status="duplicate"), []
        out: list[Effect] = []
        entry = InjectEntry(
            inject_id=req.inject_id,
            prompt=req.prompt,
            priority=req.priority,
            dedup_key=req.dedup_key,
            skill=req.skill,
            wait=req.wait,
            enqueued_at=now,
            expires_at=now + req.ttl_s if req.ttl_s is not None else None,
        )
        playing = self.current
        if req.dedup_key is not None and playing is not None and playing.entry.dedup_key == req.dedup_key:
            out.append(inject_status(entry, "dropped"))
            return m.Injected(inject_id=req.inject_id, status="dropped"), out
        if self.can_fire(now) and self.eligible(entry):
            older = self.queue.same_key(entry.dedup_key)
            if older is not None:  # last wins, and this one runs now
                self.queue.remove(older)
                out.append(inject_status(older, "replaced"))
                out.append(QueueChanged())
            tx = self.arbiter.begin(now)
            self._fire(tx, entry)
            self.commit(tx, out, drain=False)
            return m.Injected(inject_id=req.inject_id, status="fired", will_notify_done=req.wait), out
        replaced = self.queue.put(entry)
        if replaced is not None:
            out.append(inject_status(replaced, "replaced"))
        out.append(inject_status(entry, "queued"))
        out.append(QueueChanged())
        return m.Injected(inject_id=req.inject_id, status="queued"), out

    def turn_end(self, req: m.TurnEnd, now: float) -> tuple[m.TurnEnded, list[Effect]]:
        """A turn's barrier: decide what runs next, acquire it for its holder,
        release the turn's DIALOG — all in one transition."""
        memo = self.turn_ends.get(req.activity_id)
        if memo is not None:
            return memo, []  # a retry of a turn_end already applied
        _check_holder(req.holder)
        if req.pending is not None:
            _check_holder(req.pending.host)
        self._touch(req.holder, now)
        out: list[Effect] = []
        turn = self.arbiter.get(req.activity_id)
        pending = req.pending
        if turn is None:
            # The turn already ended (a PTT interrupt, a lease, a stop): nothing
            # it produced may start.
            dropped = None
            if pending is not None:
                out.append(DropEffect(pending.host, pending.effect_id, "superseded"))
                dropped = pending.effect_id
            return m.TurnEnded(outcome="idle", dropped_effect=dropped), out
        if turn.holder != req.holder or turn.channel is not Channel.DIALOG:
            raise WireError(
                ErrorCode.NOT_HOLDER, f"{req.holder} does not hold a turn {req.activity_id} on DIALOG"
            )

        tx = self.arbiter.begin(now)
        self.arbiter.end(tx, turn, EndReason.RELEASED)
        self._settle_current(tx.ended, out)  # an injected turn is done
        choice = after_turn(
            self.queue,
            pending,
            executor=self.executor(now),
            claim_live=self.claim_live(),
            eligible=lambda e: self.eligible(e, at_barrier=True),
        )
        if pending is not None and choice.dropped is not None:
            out.append(DropEffect(pending.host, pending.effect_id, choice.dropped))
        effect_activity_id = None
        if choice.start is not None:
            effect = self._effect_activity(choice.start, turn.meta.turn_id, now)
            self._touch(choice.start.host, now, only_if_new=True)
            self.arbiter.push(tx, effect)
            effect_activity_id = effect.activity_id
        if choice.fire is not None:
            self.queue.remove(choice.fire)
            out.append(QueueChanged())
            self._fire(tx, choice.fire)
        reply = choice.reply(pending, effect_activity_id)
        self.commit(tx, out)
        self.turn_ends[req.activity_id] = reply
        while len(self.turn_ends) > TURN_END_MEMO:
            self.turn_ends.popitem(last=False)
        return reply, out

    # -- the bridge's answers to run_inject (runs.py) ----------------------------------------
    def inject_accepted(self, inject_id: str, activity_id: str, status: str, now: float) -> list[Effect]:
        return runs.accepted(self, inject_id, activity_id, status, now)

    def inject_unavailable(self, inject_id: str, activity_id: str, now: float) -> list[Effect]:
        return runs.unavailable(self, inject_id, activity_id, now)

    # -- time -----------------------------------------------------------------------------
    def tick(self, now: float) -> list[Effect]:
        """Leases, patience deadlines, TTLs and the interrupt hold; then the queue."""
        out: list[Effect] = []
        for holder in self.leases.expire(now, self.busy()):
            mine = [a for a in self.arbiter.activities() if a.holder == holder]
            if mine:
                tx = self.arbiter.begin(now)
                for activity in mine:
                    self.arbiter.end(tx, activity, EndReason.LEASE_EXPIRED)
                self.commit(tx, out)
        expiring = sorted(
            (
                a
                for a in self.arbiter.activities()
                if a.patience_deadline is not None and a.patience_deadline <= now
            ),
            key=lambda a: a.patience_deadline or 0.0,
        )
        for activity in expiring:
            out.append(PatienceHook(activity.holder, activity.activity_id))
            tx = self.arbiter.begin(now)
            self.arbiter.end(tx, activity, EndReason.PATIENCE_EXPIRED)
            self.commit(tx, out)
        expired = self.queue.expire(now)
        for entry in expired:
            out.append(inject_status(entry, "expired"))
        if expired:
            out.append(QueueChanged())
        if self.hold_until is not None and now >= self.hold_until:
            self.hold_until = None
        self._drain(now, out)
        return out

    def next_deadline(self) -> float | None:
        candidates = [*self.holders.values()]
        candidates += [
            a.patience_deadline for a in self.arbiter.activities() if a.patience_deadline is not None
        ]
        expiry = self.queue.next_expiry()
        if expiry is not None:
            candidates.append(expiry)
        if self.hold_until is not None:
            candidates.append(self.hold_until)
        return min(candidates, default=None)

    # -- views and persistence (views.py, persist.py) --------------------------------------------
    def snapshot(self) -> m.Snapshot:
        return views.snapshot(self)

    def queue_event(self) -> m.QueueEvent:
        return views.queue_event(self)

    def dump(self) -> SavedFocus:
        return persist.dump(self)

    def load(self, saved: SavedFocus, now: float) -> list[Effect]:
        """Restore a persisted state (see `persist.load`)."""
        return persist.load(self, saved, now)

    # -- internals -----------------------------------------------------------------------------
    def _new_activity(
        self,
        channel: Channel,
        interface: str,
        holder: str,
        content_type: ContentType,
        patience_ms: int,
        meta: ActivityMeta,
        now: float,
    ) -> Activity:
        return Activity(
            activity_id=self.new_id("a"),
            channel=channel,
            interface=interface,
            holder=holder,
            content_type=content_type,
            patience_ms=patience_ms,
            meta=meta,
            acquired_at=now,
        )

    def _effect_activity(self, pending: m.PendingEffect, turn_id: str | None, now: float) -> Activity:
        """The activity of a stream or claim a turn produced, for its skill-host."""
        claim = pending.kind == "claim"
        meta = ActivityMeta(
            kind=ActivityKind.CLAIM if claim else ActivityKind.STREAM,
            skill=pending.skill,
            effect_id=pending.effect_id,
            label=pending.label,
            title=pending.title,
            preroll_ms=pending.preroll_ms,
            turn_id=turn_id,
        )
        channel = Channel.COMMS if claim else Channel.CONTENT
        return self._new_activity(
            channel, pending.skill, pending.host, pending.content_type, pending.patience_ms, meta, now
        )

    def _touch(self, holder: str, now: float, *, only_if_new: bool = False) -> None:
        if only_if_new and holder in self.leases.heard:
            return  # its lease starts when it hears of what it got (`first_told`)
        self.leases.touch(holder, now)

    def _held_by(self, holder: str, activity_id: str) -> Activity:
        activity = self.arbiter.get(activity_id)
        if activity is None:
            raise WireError(ErrorCode.NOT_HOLDER, f"no activity {activity_id} (it ended or never existed)")
        if activity.holder != holder:
            raise WireError(ErrorCode.NOT_HOLDER, f"activity {activity_id} is held by another holder")
        return activity

    def _fire(self, tx: Transition, entry: InjectEntry) -> None:
        if entry.priority is InjectPriority.PREEMPT:
            for claim in self.arbiter.in_channel(Channel.COMMS):
                self.arbiter.end(tx, claim, EndReason.PREEMPTED)
        turn = self._new_activity(
            Channel.DIALOG,
            INJECT_INTERFACE,
            self.bridge_holder,
            ContentType.NONMIXABLE,
            0,
            ActivityMeta(kind=ActivityKind.TURN, inject_id=entry.inject_id, skill=entry.skill),
            tx.now,
        )
        self.arbiter.push(tx, turn)
        self.current = FiringInject(entry=entry, activity_id=turn.activity_id)
        # After the notices: the floor is the turn's before the bridge hears of it.
        tx.after.append(inject_status(entry, "fired"))
        tx.after.append(RunInject(entry.inject_id, entry.prompt, turn.activity_id, entry.priority))
        tx.after.append(QueueChanged())

    def commit(self, tx: Transition, out: list[Effect], *, drain: bool = True) -> None:
        """Finish a change. With `drain`, the first eligible queued inject joins
        the same change, so what it displaces never flickers back on."""
        self._settle_current(tx.ended, out)
        if drain:
            self._drain_into(tx, out)
        finished = self.arbiter.commit(tx, out)
        told, self.arbiter.first_told = self.arbiter.first_told, []
        for holder in told:
            self._touch(holder, tx.now)
        self._settle_current(finished, out)
        out.extend(tx.after)

    def _settle_current(self, ended: list[tuple[Activity, EndReason]], out: list[Effect]) -> None:
        """If the injected turn's DIALOG is gone, the inject is done — unless
        the bridge died before it took it: then it waits for the bridge again."""
        current = self.current
        if current is None or current.activity_id in self.arbiter.by_id:
            return
        reason = next((r for a, r in ended if a.activity_id == current.activity_id), EndReason.RELEASED)
        self.current = None
        if reason is EndReason.LEASE_EXPIRED and not current.accepted:
            self.queue.push_front(current.entry)
            out.append(inject_status(current.entry, "queued"))
        else:
            out.append(inject_status(current.entry, "done"))
        out.append(QueueChanged())

    def _drain_into(self, tx: Transition, out: list[Effect]) -> None:
        if not self.can_fire(tx.now):
            return
        entry = self.queue.first(self.eligible)
        if entry is not None:
            self.queue.remove(entry)
            self._fire(tx, entry)

    def _drain(self, now: float, out: list[Effect]) -> None:
        """Fire the first eligible queued inject, outside any other change."""
        if self.can_fire(now) and self.queue.first(self.eligible) is not None:
            self.commit(self.arbiter.begin(now), out)


def _check_holder(holder: str) -> None:
    """A holder id becomes a subject token (focus.notify.<holder>)."""
    try:
        token(holder, "holder")
    except InvalidToken as exc:
        raise WireError(ErrorCode.INVALID, str(exc)) from None
