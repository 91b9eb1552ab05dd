"""The AVS-style arbiter: channels, per-channel stacks, activities and their
states. Pure: no I/O, no clock (every change is given `now`).

Exactly one activity is foreground: the top of the highest-priority non-empty
stack. Every change is made inside a `Transition`; committing it compares the
foreground before and after and emits the notices in the reference's order:

1. activities ended by the change get NONE (in the order they were ended);
2. if the foreground moved, the one that lost it is displaced: with patience
   it goes BACKGROUND (MAY_DUCK if mixable, MUST_PAUSE otherwise) and its
   patience deadline starts; without it is removed with NONE (`displaced`) —
   unless it is CONTENT and an injected turn took the floor: then it is
   *parked* (BACKGROUND, no patience clock) and resumes after the turn. A
   park lasts while injected turns hold the floor; when anything else takes
   it (a stream or claim the turn started, a user's turn), the parked
   activity is displaced as above (NONE `displaced`);
3. the new foreground gets FOREGROUND (a paused activity resumes);
4. an activity replaced by a same-identity acquire that takes the foreground
   gets NONE (`replaced`) last — the one exception to "old off before new on",
   so a replacement hands over without a gap; the new one's notice names the
   old in `replaces`. A replaced activity whose replacement does not take the
   foreground (an inject's DIALOG came first) gets its NONE with step 1.

An activity acquired under a higher foreground is pending: it gets no notice
until it is promoted (or ended).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from huxley_focus.effects import Effect, Notice
from huxley_wire.messages.focus import (
    DEFAULT_CHANNEL_PRIORITY,
    ActivityEvent,
    ActivityMeta,
    Behavior,
    Channel,
    ContentType,
    EndReason,
    FocusState,
)


@dataclass(slots=True)
class Activity:
    activity_id: str
    channel: Channel
    interface: str
    holder: str
    content_type: ContentType
    patience_ms: int
    meta: ActivityMeta
    acquired_at: float
    # None while pending (never told anything); FOREGROUND or BACKGROUND after.
    state: FocusState | None = None
    patience_deadline: float | None = None
    granted_at: float | None = None  # first time it became FOREGROUND
    announced: bool = False  # its holder has heard of it (acquire reply or a notice)
    parked: bool = False  # content without patience, paused under an injected turn

    @property
    def identity(self) -> tuple[Channel, str]:
        return (self.channel, self.interface)

    @property
    def injected_turn(self) -> bool:
        """The DIALOG focus took for an injected turn (meta.inject_id)."""
        return self.channel is Channel.DIALOG and self.meta.inject_id is not None


def parks(lost: Activity, taker: Activity | None) -> bool:
    """An injected turn pauses the content it interrupts whatever its patience,
    so the seeds' "the framework resumes the stream after" holds for a stream
    without patience too (a radio); a user's turn still stops it."""
    return lost.channel is Channel.CONTENT and taker is not None and taker.injected_turn


@dataclass(slots=True)
class Transition:
    now: float
    before: Activity | None
    ended: list[tuple[Activity, EndReason]] = field(default_factory=list)
    replaced: list[tuple[Activity, Activity]] = field(default_factory=list)  # (old, new)
    after: list[Effect] = field(default_factory=list)  # the caller's effects that follow the notices


class Arbiter:
    def __init__(
        self,
        priorities: Mapping[Channel, int] = DEFAULT_CHANNEL_PRIORITY,
        *,
        duck_gain: float = 0.3,
        ramp_ms: int = 100,
    ) -> None:
        missing = set(Channel) - set(priorities)
        if missing:
            raise ValueError(f"no priority for channels {sorted(missing)}")
        if len(set(priorities.values())) != len(priorities):
            raise ValueError("channel priorities must differ")
        self.priorities = dict(priorities)
        # Highest priority (lowest number) first.
        self.order: list[Channel] = sorted(Channel, key=lambda c: self.priorities[c])
        self.stacks: dict[Channel, list[Activity]] = {c: [] for c in self.order}
        self.by_id: dict[str, Activity] = {}
        self.duck_gain = duck_gain
        self.ramp_ms = ramp_ms
        self.seq = 0  # one per notice: observers detect gaps with it
        # Holders just told of an activity they did not ask for: their fast
        # lease starts now (the core takes this list after each change).
        self.first_told: list[str] = []

    # -- reading -------------------------------------------------------------------
    def foreground(self) -> Activity | None:
        for channel in self.order:
            stack = self.stacks[channel]
            if stack:
                return stack[-1]
        return None

    def get(self, activity_id: str) -> Activity | None:
        return self.by_id.get(activity_id)

    def activities(self) -> Iterator[Activity]:
        """Every activity in priority order, each stack top first."""
        for channel in self.order:
            yield from reversed(self.stacks[channel])

    def in_channel(self, channel: Channel) -> list[Activity]:
        """The channel's stack, top first."""
        return list(reversed(self.stacks[channel]))

    def find(self, channel: Channel, interface: str) -> Activity | None:
        for activity in self.stacks[channel]:
            if activity.interface == interface:
                return activity
        return None

    def __len__(self) -> int:
        return len(self.by_id)

    # -- changing --------------------------------------------------------------------
    def begin(self, now: float) -> Transition:
        return Transition(now=now, before=self.foreground())

    def push(self, tx: Transition, activity: Activity) -> None:
        """Put an activity on top of its channel's stack, replacing a
        same-identity one (no grace)."""
        old = self.find(activity.channel, activity.interface)
        if old is not None:
            self._remove(old)
            tx.replaced.append((old, activity))
        self.stacks[activity.channel].append(activity)
        self.by_id[activity.activity_id] = activity

    def end(self, tx: Transition, activity: Activity, reason: EndReason) -> None:
        self._remove(activity)
        tx.ended.append((activity, reason))

    def commit(self, tx: Transition, out: list[Effect]) -> list[tuple[Activity, EndReason]]:
        """Emit the transition's notices; returns every activity that got NONE."""
        finished = list(tx.ended)
        for activity, reason in tx.ended:
            out.append(self._notice(activity, FocusState.NONE, tx.now, reason=reason))
        after = self.foreground()
        # Only a replacement that takes the foreground hands over without a gap;
        # any other replaced activity is simply off, before the new one is on.
        handover = [(old, new) for old, new in tx.replaced if new is after]
        for old, new in tx.replaced:
            if new is not after:
                finished.append((old, EndReason.REPLACED))
                out.append(self._notice(old, FocusState.NONE, tx.now, reason=EndReason.REPLACED))
        if after is not tx.before:
            lost = tx.before
            if lost is not None and lost.activity_id in self.by_id:
                if lost.patience_ms > 0:
                    lost.state = FocusState.BACKGROUND
                    lost.patience_deadline = tx.now + lost.patience_ms / 1000
                    out.append(self._notice(lost, FocusState.BACKGROUND, tx.now))
                elif parks(lost, after):
                    lost.state = FocusState.BACKGROUND
                    lost.parked = True  # no deadline: it waits for the turn, not a clock
                    out.append(self._notice(lost, FocusState.BACKGROUND, tx.now))
                else:
                    self._displace(lost, tx.now, finished, out)
            if after is not None and not after.injected_turn:
                # The park was for the injected turns; anything else taking the
                # floor displaces what they parked, as it would have at once.
                for parked in [a for a in self.activities() if a.parked and a is not after]:
                    self._displace(parked, tx.now, finished, out)
            if after is not None:
                after.state = FocusState.FOREGROUND
                after.patience_deadline = None
                after.parked = False
                if after.granted_at is None:
                    after.granted_at = tx.now
                replaces = next((old.activity_id for old, _new in handover), None)
                out.append(self._notice(after, FocusState.FOREGROUND, tx.now, replaces=replaces))
        for old, _new in handover:
            finished.append((old, EndReason.REPLACED))
            out.append(self._notice(old, FocusState.NONE, tx.now, reason=EndReason.REPLACED))
        return finished

    def restore(self, activities: list[Activity]) -> None:
        """Load activities (each stack bottom first), as persisted."""
        for activity in activities:
            self.stacks[activity.channel].append(activity)
            self.by_id[activity.activity_id] = activity

    def notice_current(self, activity: Activity, now: float) -> Notice:
        """Re-announce an activity's present state (after a restart)."""
        state = activity.state or FocusState.BACKGROUND
        return self._notice(activity, state, now)

    # -- internals --------------------------------------------------------------------
    def _displace(
        self, activity: Activity, now: float, finished: list[tuple[Activity, EndReason]], out: list[Effect]
    ) -> None:
        self._remove(activity)
        finished.append((activity, EndReason.DISPLACED))
        out.append(self._notice(activity, FocusState.NONE, now, reason=EndReason.DISPLACED))

    def _remove(self, activity: Activity) -> None:
        self.stacks[activity.channel].remove(activity)
        del self.by_id[activity.activity_id]

    def behavior(self, activity: Activity, state: FocusState) -> tuple[Behavior, float]:
        if state is FocusState.FOREGROUND:
            return Behavior.PRIMARY, 1.0
        if state is FocusState.NONE:
            return Behavior.MUST_STOP, 0.0
        if activity.content_type is ContentType.MIXABLE:
            return Behavior.MAY_DUCK, self.duck_gain
        return Behavior.MUST_PAUSE, 0.0

    def _notice(
        self,
        activity: Activity,
        state: FocusState,
        now: float,
        *,
        reason: EndReason | None = None,
        replaces: str | None = None,
    ) -> Notice:
        self.seq += 1
        if not activity.announced and state is not FocusState.NONE:
            self.first_told.append(activity.holder)
        activity.announced = True
        behavior, gain = self.behavior(activity, state)
        return Notice(
            ActivityEvent(
                seq=self.seq,
                ts=now,
                activity_id=activity.activity_id,
                channel=activity.channel,
                interface=activity.interface,
                holder=activity.holder,
                content_type=activity.content_type,
                state=state,
                behavior=behavior,
                gain=gain,
                ramp_ms=self.ramp_ms,
                reason=reason,
                meta=activity.meta,
                replaces=replaces,
            )
        )
