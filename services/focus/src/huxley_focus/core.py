"""The focus core: the arbiter plus the inject scheduler, leases and patience.

Pure and synchronous: every operation takes `now` (wall-clock seconds) and
returns its reply together with the effects the adapter must perform, in
order. The adapter runs one operation at a time (the serialized actor), so
nothing here needs a lock.

Scheduler rules (docs/protocol.md, "The inject scheduler"):

- An inject fires only when no turn is live (DIALOG empty), the queue is not
  held by a fresh user-PTT interrupt, the bridge holds a lease (it executes
  the turn), and the inject is eligible: not while a claim is live unless
  PREEMPT, and a NORMAL one not while content plays (foreground or ducked).
- Otherwise it is queued; a queued entry with the same dedup_key is replaced.
- A request whose dedup_key equals the inject now playing is dropped.
- At a turn's end (`turn_end`): a queued PREEMPT fires if the turn produced a
  stream or claim; else a queued BLOCK_BEHIND_COMMS fires if it produced a
  stream (the stream is dropped); else the claim starts; else the stream
  starts; else the first queued inject fires (a quiet turn end: paused content
  does not hold back a NORMAL, only a live claim holds back a non-PREEMPT).
- After every other change (release, lease expiry, patience expiry, stop,
  a TTL, the bridge coming back) the first eligible queued inject fires.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable, Mapping

from huxley_focus.arbiter import Activity, Arbiter, Transition
from huxley_focus.effects import DropEffect, Effect, InjectStatus, PatienceHook, QueueChanged, RunInject
from huxley_focus.injects import FiringInject, InjectEntry, InjectQueue
from huxley_focus.state import SavedActivity, SavedFiring, SavedFocus, SavedInject
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
    InjectEvent,
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
        interrupt_hold_s: float = 2.0,
        bridge_holder: str = BRIDGE_HOLDER,
        new_id: IdFactory = random_id,
    ) -> None:
        self.arbiter = Arbiter(priorities, duck_gain=duck_gain, ramp_ms=ramp_ms)
        self.queue = InjectQueue()
        self.current: FiringInject | None = None
        self.holders: dict[str, float] = {}  # holder -> lease deadline
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

    def bridge_alive(self, now: float) -> bool:
        return self.holders.get(self.bridge_holder, 0.0) > now

    def held(self, now: float) -> bool:
        return self.hold_until is not None and now < self.hold_until

    def eligible(self, entry: InjectEntry, *, at_barrier: bool = False) -> bool:
        if entry.priority is not InjectPriority.PREEMPT and self.claim_live():
            return False
        return not (not at_barrier and entry.priority is InjectPriority.NORMAL and self.content_playing())

    def can_fire(self, now: float) -> bool:
        return self.current is None and not self.turn_live() and not self.held(now) and self.bridge_alive(now)

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
        self._commit(tx, out)
        return m.Acquired(activity_id=activity.activity_id, state=activity.state or "pending"), out

    def release(self, req: m.Release, now: float) -> tuple[Ok, list[Effect]]:
        self._touch(req.holder, now)
        activity = self._held_by(req.holder, req.activity_id)
        out: list[Effect] = []
        tx = self.arbiter.begin(now)
        self.arbiter.end(tx, activity, req.reason)
        self._commit(tx, out)
        return Ok(), out

    def renew(self, holder: str, now: float) -> tuple[m.Renewed, list[Effect]]:
        _check_holder(holder)
        self._touch(holder, now)
        out: list[Effect] = []
        self._drain(now, out)  # the bridge coming back may unblock the queue
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
        self._commit(tx, out, drain=False)  # the user speaks next, not the queue
        ended_claim = bool(claims)
        self.hold_until = None if ended_claim else now + self.interrupt_hold_s
        return m.Interrupted(ended_claim=ended_claim, claim_age_ms=age_ms, stopped=stopped), out

    def stop_foreground(self, now: float) -> tuple[Ok, list[Effect]]:
        out: list[Effect] = []
        foreground = self.arbiter.foreground()
        tx = self.arbiter.begin(now)
        if foreground is not None:
            self.arbiter.end(tx, foreground, EndReason.STOPPED)
        self._commit(tx, out)
        return Ok(), out

    def stop_all(self, now: float) -> tuple[Ok, list[Effect]]:
        out: list[Effect] = []
        tx = self.arbiter.begin(now)
        for activity in list(self.arbiter.activities()):
            self.arbiter.end(tx, activity, EndReason.STOPPED)
        # A clean slate: the queue is kept but waits a moment (like after an
        # interrupt) instead of filling the silence at once.
        self._commit(tx, out, drain=False)
        self.hold_until = now + self.interrupt_hold_s
        return Ok(), out

    def stop_channel(self, channel: Channel, now: float) -> tuple[Ok, list[Effect]]:
        out: list[Effect] = []
        tx = self.arbiter.begin(now)
        for activity in self.arbiter.in_channel(channel):
            self.arbiter.end(tx, activity, EndReason.STOPPED)
        self._commit(tx, out)
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
            self._status(entry, "dropped", out)
            return m.Injected(inject_id=req.inject_id, status="dropped"), out
        if self.can_fire(now) and self.eligible(entry):
            older = self.queue.same_key(entry.dedup_key)
            if older is not None:  # last wins, and this one runs now
                self.queue.remove(older)
                self._status(older, "replaced", out)
                out.append(QueueChanged())
            tx = self.arbiter.begin(now)
            self._fire(tx, entry)
            self._commit(tx, out, drain=False)
            return m.Injected(inject_id=req.inject_id, status="fired", will_notify_done=req.wait), out
        replaced = self.queue.put(entry)
        if replaced is not None:
            self._status(replaced, "replaced", out)
        self._status(entry, "queued", out)
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

        reply = m.TurnEnded(outcome="idle")
        tx = self.arbiter.begin(now)
        self.arbiter.end(tx, turn, EndReason.RELEASED)
        self._settle_current(tx.ended, out)  # an injected turn is done

        fire: InjectEntry | None = None
        preempt = self.queue.first(lambda e: e.priority is InjectPriority.PREEMPT)
        block = self.queue.first(
            lambda e: e.priority is InjectPriority.BLOCK_BEHIND_COMMS and self.eligible(e, at_barrier=True)
        )
        executor = self.bridge_alive(now)
        if pending is not None and preempt is not None and executor:
            fire = preempt
        elif pending is not None and pending.kind == "stream" and block is not None and executor:
            fire = block
        if fire is not None and pending is not None:
            out.append(DropEffect(pending.host, pending.effect_id, "preempted"))
            reply = m.TurnEnded(
                outcome="fired_inject", inject_id=fire.inject_id, dropped_effect=pending.effect_id
            )
        elif pending is not None and pending.kind == "claim" and self.claim_live():
            out.append(DropEffect(pending.host, pending.effect_id, "claim_busy"))
            reply = m.TurnEnded(outcome="idle", dropped_effect=pending.effect_id)
            pending = None
        elif pending is not None:
            channel = Channel.COMMS if pending.kind == "claim" else Channel.CONTENT
            effect = self._new_activity(
                channel,
                pending.skill,
                pending.host,
                pending.content_type,
                pending.patience_ms,
                ActivityMeta(
                    kind=ActivityKind.CLAIM if pending.kind == "claim" else ActivityKind.STREAM,
                    skill=pending.skill,
                    effect_id=pending.effect_id,
                    label=pending.label,
                    title=pending.title,
                    preroll_ms=pending.preroll_ms,
                    turn_id=turn.meta.turn_id,
                ),
                now,
            )
            self._touch(pending.host, now, only_if_new=True)
            self.arbiter.push(tx, effect)
            outcome = "started_claim" if pending.kind == "claim" else "started_stream"
            reply = m.TurnEnded(outcome=outcome, effect_activity_id=effect.activity_id)  # type: ignore[arg-type]
        if pending is None and fire is None and executor:
            fire = self.queue.first(lambda e: self.eligible(e, at_barrier=True))
            if fire is not None:
                reply = m.TurnEnded(
                    outcome="fired_inject", inject_id=fire.inject_id, dropped_effect=reply.dropped_effect
                )
        if fire is not None:
            self.queue.remove(fire)
            out.append(QueueChanged())
            self._fire(tx, fire)
        self._commit(tx, out)
        self.turn_ends[req.activity_id] = reply
        while len(self.turn_ends) > TURN_END_MEMO:
            self.turn_ends.popitem(last=False)
        return reply, out

    def inject_accepted(self, inject_id: str, activity_id: str, status: str, now: float) -> list[Effect]:
        """The bridge acked run_inject. `already_done` means its turn is over
        although no turn_end reached us (lost in a restart): end it here so
        DIALOG never stays stuck."""
        current = self.current
        if current is None or current.entry.inject_id != inject_id or current.activity_id != activity_id:
            return []
        current.accepted = True
        if status != "already_done":
            return []
        _reply, out = self.turn_end(
            m.TurnEnd(holder=self.bridge_holder, activity_id=activity_id, inject_id=inject_id), now
        )
        return out

    # -- time -----------------------------------------------------------------------------
    def tick(self, now: float) -> list[Effect]:
        """Leases, patience deadlines, TTLs and the interrupt hold; then the queue."""
        out: list[Effect] = []
        for holder, deadline in list(self.holders.items()):
            if deadline <= now:
                del self.holders[holder]
                mine = [a for a in self.arbiter.activities() if a.holder == holder]
                if mine:
                    tx = self.arbiter.begin(now)
                    for activity in mine:
                        self.arbiter.end(tx, activity, EndReason.LEASE_EXPIRED)
                    self._commit(tx, out)
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
            self._commit(tx, out)
        expired = self.queue.expire(now)
        for entry in expired:
            self._status(entry, "expired", out)
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

    # -- views ------------------------------------------------------------------------------
    def snapshot(self) -> m.Snapshot:
        foreground = self.arbiter.foreground()
        return m.Snapshot(
            seq=self.arbiter.seq,
            channels={c: [self._view(a) for a in self.arbiter.in_channel(c)] for c in self.arbiter.order},
            foreground=foreground.activity_id if foreground else None,
            queue=[e.view() for e in self.queue],
            current_inject=self.current.entry.view() if self.current else None,
            holders=dict(self.holders),
        )

    def queue_event(self) -> m.QueueEvent:
        return m.QueueEvent(
            seq=self.arbiter.seq,
            queue=[e.view() for e in self.queue],
            current=self.current.entry.view() if self.current else None,
        )

    # -- persistence ----------------------------------------------------------------------------
    def dump(self) -> SavedFocus:
        activities = [
            SavedActivity(
                activity_id=a.activity_id,
                channel=a.channel,
                interface=a.interface,
                holder=a.holder,
                content_type=a.content_type,
                patience_ms=a.patience_ms,
                meta=a.meta,
                acquired_at=a.acquired_at,
                state=a.state,
                patience_deadline=a.patience_deadline,
                granted_at=a.granted_at,
                announced=a.announced,
            )
            for channel in self.arbiter.order
            for a in self.arbiter.stacks[channel]
        ]
        current = None
        if self.current is not None:
            current = SavedFiring(
                entry=_save_entry(self.current.entry),
                activity_id=self.current.activity_id,
                accepted=self.current.accepted,
            )
        return SavedFocus(
            seq=self.arbiter.seq,
            activities=activities,
            queue=[_save_entry(e) for e in self.queue],
            current=current,
            seen=list(self.queue.seen),
            holders=sorted(self.holders),
            turn_ends=dict(self.turn_ends),
        )

    def load(self, saved: SavedFocus, now: float) -> list[Effect]:
        """Restore a persisted state: every holder gets a fresh lease, patience
        deadlines keep their wall-clock value, and the effects re-announce each
        live activity's state and re-send run_inject for the current inject
        (the bridge is idempotent on inject_id)."""
        self.arbiter.seq = saved.seq
        self.arbiter.restore(
            [
                Activity(
                    activity_id=s.activity_id,
                    channel=s.channel,
                    interface=s.interface,
                    holder=s.holder,
                    content_type=s.content_type,
                    patience_ms=s.patience_ms,
                    meta=s.meta,
                    acquired_at=s.acquired_at,
                    state=s.state,
                    patience_deadline=s.patience_deadline,
                    granted_at=s.granted_at,
                    announced=s.announced,
                )
                for s in saved.activities
            ]
        )
        for s in saved.queue:
            self.queue.entries.append(_load_entry(s))
        for inject_id in saved.seen:
            self.queue.remember(inject_id)
        self.turn_ends = OrderedDict(saved.turn_ends)
        holders = set(saved.holders) | {a.holder for a in self.arbiter.activities()}
        self.holders = {h: now + self.lease_s for h in sorted(holders)}
        out: list[Effect] = []
        for activity in self.arbiter.activities():
            if activity.state is not None:
                out.append(self.arbiter.notice_current(activity, now))
        if saved.current is not None and saved.current.activity_id in self.arbiter.by_id:
            self.current = FiringInject(
                entry=_load_entry(saved.current.entry),
                activity_id=saved.current.activity_id,
                accepted=saved.current.accepted,
            )
            entry = self.current.entry
            out.append(RunInject(entry.inject_id, entry.prompt, self.current.activity_id, entry.priority))
        elif saved.current is not None:
            # Its DIALOG is gone: it was never going to finish; run it again unless it ran.
            lost = _load_entry(saved.current.entry)
            if saved.current.accepted:
                self._status(lost, "done", out)
            else:
                self.queue.push_front(lost)
        out.append(QueueChanged())
        return out

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

    def _touch(self, holder: str, now: float, *, only_if_new: bool = False) -> None:
        if only_if_new and self.holders.get(holder, 0.0) > now:
            return
        self.holders[holder] = now + self.lease_s

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
        self._status(entry, "fired", tx.after)
        tx.after.append(RunInject(entry.inject_id, entry.prompt, turn.activity_id, entry.priority))
        tx.after.append(QueueChanged())

    def _commit(self, tx: Transition, out: list[Effect], *, drain: bool = True) -> None:
        """Finish a change. With `drain`, the first eligible queued inject joins
        the same change, so what it displaces never flickers back on."""
        self._settle_current(tx.ended, out)
        if drain:
            self._drain_into(tx, out)
        finished = self.arbiter.commit(tx, out)
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
            self._status(current.entry, "queued", out)
        else:
            self._status(current.entry, "done", out)
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
            self._commit(self.arbiter.begin(now), out)

    def _status(self, entry: InjectEntry, status: str, out: list[Effect]) -> None:
        out.append(
            InjectStatus(
                InjectEvent(
                    inject_id=entry.inject_id,
                    status=status,  # type: ignore[arg-type]
                    skill=entry.skill,
                    priority=entry.priority,
                    dedup_key=entry.dedup_key,
                )
            )
        )

    def _view(self, activity: Activity) -> m.ActivityView:
        behavior, gain = (
            (None, 0.0) if activity.state is None else self.arbiter.behavior(activity, activity.state)
        )
        return m.ActivityView(
            behavior=behavior,
            gain=gain,
            activity_id=activity.activity_id,
            channel=activity.channel,
            interface=activity.interface,
            holder=activity.holder,
            content_type=activity.content_type,
            state=activity.state or "pending",
            patience_ms=activity.patience_ms,
            patience_deadline=activity.patience_deadline,
            meta=activity.meta,
        )


def _check_holder(holder: str) -> None:
    """A holder id becomes a subject token (focus.notify.<holder>)."""
    try:
        token(holder, "holder")
    except InvalidToken as exc:
        raise WireError(ErrorCode.INVALID, str(exc)) from None


def _save_entry(entry: InjectEntry) -> SavedInject:
    return SavedInject(
        inject_id=entry.inject_id,
        prompt=entry.prompt,
        priority=entry.priority,
        dedup_key=entry.dedup_key,
        skill=entry.skill,
        wait=entry.wait,
        enqueued_at=entry.enqueued_at,
        expires_at=entry.expires_at,
    )


def _load_entry(saved: SavedInject) -> InjectEntry:
    return InjectEntry(
        inject_id=saved.inject_id,
        prompt=saved.prompt,
        priority=saved.priority,
        dedup_key=saved.dedup_key,
        skill=saved.skill,
        wait=saved.wait,
        enqueued_at=saved.enqueued_at,
        expires_at=saved.expires_at,
    )
