"""Property-based tests of the core over random operation sequences
(hypothesis state machine). Checked over the stream of notices, in order:

- never two FOREGROUND at once (a same-identity replacement names the one it
  replaces, which gets its NONE right after);
- an activity that got NONE never hears anything again (so never FOREGROUND);
- a patience hook goes only to a BACKGROUND activity and is followed at once
  by that activity's NONE (`patience_expired`);
- what the core holds matches what was announced (pending = never told);
- a released activity gets NONE in that same operation, and after stop_all
  every activity ever seen has got NONE;
- an inject is done at most once and never fires after it is done;
- content an injected turn parked (no patience) is BACKGROUND without a
  patience clock only while injected turns hold the floor; when they end it
  is the foreground again unless something else took the floor, which
  displaced it.
"""

from __future__ import annotations

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from focus.harness import Sim, claim, notices, stream
from huxley_focus.effects import InjectStatus, Notice, PatienceHook
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages import focus as m
from huxley_wire.messages.focus import Channel, EndReason, FocusState, InjectPriority

HOLDERS = ["h1", "h2", "bridge"]


class FocusMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sim = Sim()
        self.absorbed = 0
        self.last: dict[str, str] = {}  # activity id -> last announced state
        self.dead: set[str] = set()
        self.going: set[str] = set()  # replaced, its NONE is on the way
        self.seen: set[str] = set()
        self.inject_count = 0
        self.inject_done: set[str] = set()

    # -- operations ----------------------------------------------------------------------
    @rule(
        holder=st.sampled_from(HOLDERS),
        channel=st.sampled_from(list(Channel)),
        interface=st.sampled_from(["x", "y"]),
        patience_ms=st.sampled_from([0, 400, 3000]),
        mixable=st.booleans(),
    )
    def acquire(self, holder: str, channel: Channel, interface: str, patience_ms: int, mixable: bool) -> None:
        try:
            reply, _ = self.sim.acquire(holder, channel, interface, patience_ms=patience_ms, mixable=mixable)
        except WireError as exc:
            assert exc.code == ErrorCode.CLAIM_BUSY and channel is Channel.COMMS
            return
        self.seen.add(reply.activity_id)

    @precondition(lambda self: len(self.sim.core.arbiter) > 0)
    @rule(
        data=st.data(),
        wrong_holder=st.booleans(),
        reason=st.sampled_from([EndReason.RELEASED, EndReason.ERROR]),
    )
    def release(self, data: st.DataObject, wrong_holder: bool, reason: EndReason) -> None:
        activity_id = data.draw(st.sampled_from(sorted(self.sim.core.arbiter.by_id)))
        activity = self.sim.core.arbiter.get(activity_id)
        assert activity is not None
        holder = "intruder" if wrong_holder else activity.holder
        start = len(self.sim.effects)
        try:
            self.sim.release(holder, activity_id, reason)
        except WireError as exc:
            assert wrong_holder and exc.code == ErrorCode.NOT_HOLDER
            return
        ended = [
            e.event
            for e in self.sim.effects[start:]
            if isinstance(e, Notice) and e.event.activity_id == activity_id
        ]
        assert [(e.state, e.reason) for e in ended] == [(FocusState.NONE, reason)]

    @rule(
        priority=st.sampled_from(list(InjectPriority)),
        dedup_key=st.sampled_from([None, "k1", "k2"]),
        ttl_s=st.sampled_from([None, 2.0]),
        repeat=st.booleans(),
    )
    def inject(
        self, priority: InjectPriority, dedup_key: str | None, ttl_s: float | None, repeat: bool
    ) -> None:
        if not repeat or self.inject_count == 0:
            self.inject_count += 1
        reply, _ = self.sim.inject(f"i{self.inject_count}", priority, dedup_key=dedup_key, ttl_s=ttl_s)
        if repeat and self.inject_count > 0:
            assert reply.status in ("duplicate", "fired", "queued", "dropped")

    @rule(priority=st.sampled_from([InjectPriority.BLOCK_BEHIND_COMMS, InjectPriority.PREEMPT]))
    def radio_then_inject(self, priority: InjectPriority) -> None:
        """Content without patience (a radio), then a timer: the case the park is for."""
        reply, _ = self.sim.acquire("h1", Channel.CONTENT, "radio", patience_ms=0)
        self.seen.add(reply.activity_id)
        self.inject_count += 1
        self.sim.inject(f"i{self.inject_count}", priority)

    @precondition(lambda self: bool(self.sim.core.arbiter.stacks[Channel.DIALOG]))
    @rule(pending=st.sampled_from(["none", "stream", "claim"]), patience=st.sampled_from([0, 3000]))
    def turn_end(self, pending: str, patience: int) -> None:
        turn = self.sim.core.arbiter.stacks[Channel.DIALOG][-1]
        parked = [a.activity_id for a in self.sim.core.arbiter.activities() if a.parked]
        start = len(self.sim.effects)
        effect: m.PendingEffect | None = None
        if pending == "stream":
            effect = stream(f"e{len(self.sim.effects)}", patience_ms=patience)
        elif pending == "claim":
            effect = claim(f"c{len(self.sim.effects)}")
        reply, _ = self.sim.turn_end(turn.activity_id, effect, holder=turn.holder)
        if reply.effect_activity_id:
            self.seen.add(reply.effect_activity_id)
        foreground = self.sim.core.arbiter.foreground()
        for activity_id in parked:
            event("parked content at a turn end")
            ends = [
                n.reason
                for n in notices(self.sim.effects[start:])
                if n.activity_id == activity_id and n.state is FocusState.NONE
            ]
            if ends:  # only a floor taken by something other than an injected turn ends it
                assert ends == [EndReason.DISPLACED] or ends == [EndReason.REPLACED], ends
                assert foreground is not None and not foreground.injected_turn
            else:
                activity = self.sim.core.arbiter.get(activity_id)
                assert activity is not None
                resumed = foreground is activity and activity.state is FocusState.FOREGROUND
                assert resumed or activity.parked, activity

    @precondition(lambda self: self.sim.core.current is not None)
    @rule(status=st.sampled_from(["accepted", "already_running", "already_done"]))
    def bridge_acks(self, status: str) -> None:
        current = self.sim.core.current
        assert current is not None
        self.sim._keep(
            self.sim.core.inject_accepted(current.entry.inject_id, current.activity_id, status, self.sim.now)
        )

    @rule(grace=st.sampled_from([0, 300]))
    def interrupt(self, grace: int) -> None:
        self.sim.interrupt(claim_grace_ms=grace)

    @rule()
    def stop_foreground(self) -> None:
        self.sim._keep(self.sim.core.stop_foreground(self.sim.now)[1])

    @rule(channel=st.sampled_from(list(Channel)))
    def stop_channel(self, channel: Channel) -> None:
        self.sim._keep(self.sim.core.stop_channel(channel, self.sim.now)[1])

    @rule()
    def stop_all(self) -> None:
        self.sim._keep(self.sim.core.stop_all(self.sim.now)[1])
        self.check_stream()
        assert len(self.sim.core.arbiter) == 0
        assert self.seen <= self.dead, self.seen - self.dead

    @rule(
        seconds=st.sampled_from([0.2, 1.0, 2.5, 4.0]),
        renewing=st.one_of(st.just(frozenset(HOLDERS)), st.frozensets(st.sampled_from(HOLDERS))),
    )
    def advance(self, seconds: float, renewing: frozenset[str]) -> None:
        self.sim.advance(seconds, renew=tuple(sorted(renewing)))

    # -- checks ------------------------------------------------------------------------
    def check_stream(self) -> None:
        hook_for: str | None = None
        for effect in self.sim.effects[self.absorbed :]:
            if isinstance(effect, PatienceHook):
                event("patience expired")
                assert hook_for is None
                assert effect.activity_id not in self.dead
                assert self.last.get(effect.activity_id) == "background"
                hook_for = effect.activity_id
            elif isinstance(effect, Notice):
                notice = effect.event
                assert notice.activity_id not in self.dead, f"{notice.activity_id} heard after NONE"
                if hook_for is not None:
                    assert (notice.activity_id, notice.state, notice.reason) == (
                        hook_for,
                        FocusState.NONE,
                        EndReason.PATIENCE_EXPIRED,
                    )
                    hook_for = None
                self.seen.add(notice.activity_id)
                self.last[notice.activity_id] = notice.state.value
                if notice.state is FocusState.NONE:
                    self.dead.add(notice.activity_id)
                    self.going.discard(notice.activity_id)
                if notice.replaces:
                    self.going.add(notice.replaces)
                foreground = [
                    a for a, s in self.last.items() if s == "foreground" and a not in self.dead | self.going
                ]
                assert len(foreground) <= 1, foreground
            elif isinstance(effect, InjectStatus):
                inject_id, status = effect.event.inject_id, effect.event.status
                assert inject_id not in self.inject_done or status not in ("fired", "done")
                if status == "done":
                    self.inject_done.add(inject_id)
        assert hook_for is None
        self.absorbed = len(self.sim.effects)

    @invariant()
    def announced_matches_held(self) -> None:
        self.check_stream()
        core = self.sim.core
        foreground = core.arbiter.foreground()
        live = [a for a, s in self.last.items() if s == "foreground" and a not in self.dead]
        assert live == ([foreground.activity_id] if foreground else [])
        for activity in core.arbiter.activities():
            if activity.state is None:
                assert activity.activity_id not in self.last  # pending: never told
            else:
                assert self.last[activity.activity_id] == activity.state.value
        assert not (self.dead & set(core.arbiter.by_id))
        if core.current is not None:
            assert core.current.activity_id in {a.activity_id for a in core.arbiter.stacks[Channel.DIALOG]}
        assert len(core.arbiter.stacks[Channel.COMMS]) <= 1
        for activity in core.arbiter.activities():
            if activity.parked:
                assert activity.channel is Channel.CONTENT and activity.patience_ms == 0
                assert activity.state is FocusState.BACKGROUND and activity.patience_deadline is None
                assert foreground is not None and foreground.injected_turn, (activity, foreground)
            elif activity.state is FocusState.BACKGROUND:
                assert activity.patience_deadline is not None  # everything else waits on its patience

    def teardown(self) -> None:
        self.sim._keep(self.sim.core.stop_all(self.sim.now)[1])
        self.check_stream()
        assert self.seen <= self.dead


TestFocusProperties = FocusMachine.TestCase
TestFocusProperties.settings = settings(
    max_examples=300,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
