"""The skill-host core without a bus: held effects, streams and claims as
sequences of focus notices, drops, discards, expiries and pump reports in,
commands out."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from huxley_sdk import AudioStream, ClaimEndReason, InputClaim
from huxley_skill_host import commands as c
from huxley_skill_host.core import HostCore, claim_end_reason
from huxley_wire.messages.focus import ActivityMeta, Behavior, Channel, EndReason, FocusChange, FocusState

TTL = 120.0


async def _silence() -> AsyncIterator[bytes]:
    yield b""


async def _heard(pcm: bytes) -> None:
    return None


def notice(
    activity: str,
    state: FocusState,
    behavior: Behavior = Behavior.PRIMARY,
    *,
    effect_id: str | None = None,
    reason: EndReason | None = None,
    channel: Channel = Channel.CONTENT,
) -> FocusChange:
    return FocusChange(
        seq=1,
        activity_id=activity,
        channel=channel,
        interface="skill",
        state=state,
        behavior=behavior,
        gain=1.0,
        ramp_ms=0,
        reason=reason if state is FocusState.NONE else None,
        meta=ActivityMeta(effect_id=effect_id),
    )


def kinds(commands: list[c.Command]) -> list[str]:
    return [type(command).__name__ for command in commands]


# -- held effects -------------------------------------------------------------------------------


# Whole seconds, so `held_at + ttl - held_at == ttl` holds exactly in floats.
@given(held_at=st.integers(0, 10**6).map(float), ttl=st.integers(1, 10**4).map(float))
def test_a_held_effect_expires_at_its_ttl_and_not_before(held_at: float, ttl: float) -> None:
    core = HostCore(ttl)
    held = core.hold("books", AudioStream(factory=_silence), held_at)
    assert core.expire(held_at + ttl * 0.99) == [] and len(core.held) == 1
    assert core.expire(held_at + ttl) == [c.EffectDropped(held, "error", expired=True)]
    assert len(core.held) == 0 and core.expire(held_at + 2 * ttl) == []


def test_an_expired_claim_ends_with_error_and_a_started_effect_never_expires() -> None:
    core = HostCore(TTL)
    claim = InputClaim(on_mic_frame=_heard)
    held = core.hold("caller", claim, 0.0)
    stream = core.hold("books", AudioStream(factory=_silence), 0.0)
    core.on_focus(notice("a-1", FocusState.FOREGROUND, effect_id=stream.effect_id), 1.0)
    out = core.expire(TTL)
    assert kinds(out) == ["EffectDropped", "EndClaim"]
    end = out[1]
    assert isinstance(end, c.EndClaim) and end.reason is ClaimEndReason.ERROR and not end.release
    assert end.claim.claim is claim and end.claim.effect_id == held.effect_id
    assert "a-1" in core.streams and core.expire(10 * TTL) == []


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("effect_dropped", ["EffectDropped", "EndClaim"]),
        ("discard", ["EffectDropped", "EndClaim"]),
    ],
)
def test_a_dropped_or_discarded_effect_is_taken_once(how: str, expected: list[str]) -> None:
    core = HostCore(TTL)
    held = core.hold("caller", InputClaim(on_mic_frame=_heard), 0.0)
    drop = core.on_effect_dropped if how == "effect_dropped" else core.discard
    assert kinds(drop(held.effect_id, "preempted")) == expected
    assert drop(held.effect_id, "preempted") == [c.UnknownEffect(held.effect_id, "preempted", how)]  # type: ignore[arg-type]


def test_focus_starting_an_effect_we_do_not_hold_is_released() -> None:
    core = HostCore(TTL)
    assert core.on_focus(notice("a-9", FocusState.FOREGROUND, effect_id="e-gone"), 0.0) == [
        c.ForeignEffect("a-9", "e-gone"),
        c.Release("a-9", EndReason.ERROR),
    ]
    assert core.on_focus(notice("a-8", FocusState.NONE, effect_id="e-gone"), 0.0) == [
        c.ForeignEffect("a-8", "e-gone")
    ]


# -- streams ------------------------------------------------------------------------------------


def started_stream(core: HostCore) -> str:
    held = core.hold("books", AudioStream(factory=_silence), 0.0)
    out = core.on_focus(notice("s-1", FocusState.FOREGROUND, effect_id=held.effect_id), 0.0)
    assert out == [c.StartStream("s-1", held), c.StartPump("s-1")]
    return "s-1"


def test_must_pause_then_foreground_restarts_the_stream() -> None:
    core = HostCore(TTL)
    s = started_stream(core)
    assert core.on_focus(notice(s, FocusState.BACKGROUND, Behavior.MUST_PAUSE), 1.0) == [c.StopPump(s)]
    assert core.pump_done(s, "cancelled") == []
    assert core.on_focus(notice(s, FocusState.FOREGROUND), 2.0) == [c.StartPump(s)]
    assert core.streams[s].starts == 2


def test_foreground_while_the_old_pump_is_closing_waits_for_it() -> None:
    core = HostCore(TTL)
    s = started_stream(core)
    assert core.on_focus(notice(s, FocusState.BACKGROUND, Behavior.MUST_PAUSE), 1.0) == [c.StopPump(s)]
    assert core.on_focus(notice(s, FocusState.FOREGROUND), 1.1) == []  # one pump at a time
    assert core.on_focus(notice(s, FocusState.BACKGROUND, Behavior.MAY_DUCK), 1.2) == []
    assert core.pump_done(s, "cancelled") == [c.StartPump(s)]


def test_none_stops_for_good() -> None:
    core = HostCore(TTL)
    s = started_stream(core)
    held = core.streams[s].held
    assert core.on_focus(notice(s, FocusState.NONE, reason=EndReason.STOPPED), 1.0) == [c.StopPump(s)]
    assert core.on_focus(notice(s, FocusState.FOREGROUND), 1.1) == []
    assert core.pump_done(s, "cancelled") == [c.StreamOver(s, held, "stopped")]
    assert core.on_focus(notice(s, FocusState.FOREGROUND), 1.2) == [] and s not in core.streams


@pytest.mark.parametrize("result", ["ended", "failed"])
def test_a_pump_that_runs_out_or_raises_finishes_the_stream(result: str) -> None:
    core = HostCore(TTL)
    s = started_stream(core)
    [over] = core.pump_done(s, result)  # type: ignore[arg-type]
    assert isinstance(over, c.StreamOver) and over.outcome == result
    assert core.on_patience_expired(s) == []


def test_patience_runs_the_hook_of_a_stream_that_has_one() -> None:
    async def hook() -> None:
        return None

    core = HostCore(TTL)
    held = core.hold("books", AudioStream(factory=_silence, on_patience_expired=hook), 0.0)
    core.on_focus(notice("s-2", FocusState.BACKGROUND, Behavior.MUST_PAUSE, effect_id=held.effect_id), 0.0)
    assert core.on_patience_expired("s-2") == [c.RunPatienceHook("s-2", held)]
    assert core.on_patience_expired("nobody") == []


STREAM_STATES = st.sampled_from(
    [
        (FocusState.FOREGROUND, Behavior.PRIMARY),
        (FocusState.BACKGROUND, Behavior.MAY_DUCK),
        (FocusState.BACKGROUND, Behavior.MUST_PAUSE),
        (FocusState.NONE, Behavior.MUST_STOP),
    ]
)
STREAM_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("notice"), STREAM_STATES),
        st.tuples(st.just("pump"), st.sampled_from(["ended", "failed", "cancelled"])),
        st.tuples(st.just("stop"), st.none()),
    ),
    max_size=30,
)


@settings(max_examples=300)
@given(steps=STREAM_STEPS)
def test_a_stream_has_one_pump_at_a_time_and_nothing_after_it_is_over(
    steps: list[tuple[str, object]],
) -> None:
    core = HostCore(TTL)
    s = started_stream(core)
    running, stopping, over, stopped_for_good = True, False, 0, False
    for step, arg in steps:
        if step == "notice":
            state, behavior = arg  # type: ignore[misc]
            out = core.on_focus(notice(s, state, behavior), 0.0)
            stopped_for_good |= state is FocusState.NONE
        elif step == "stop":
            out = core.stop()
            stopped_for_good = True
        elif not running:
            continue  # a pump reports only while it runs
        elif arg == "cancelled" and not stopping:
            continue  # only a stopped pump is cancelled
        else:
            running = stopping = False
            out = core.pump_done(s, arg)  # type: ignore[arg-type]
        for command in out:
            if isinstance(command, c.StartPump):
                assert not running and not over and not stopped_for_good
                running = True
            elif isinstance(command, c.StopPump):
                assert running and not stopping
                stopping = True
            elif isinstance(command, c.StreamOver):
                assert not running and not over
                over += 1
    assert over <= 1
    if over:
        assert s not in core.streams


# -- claims -------------------------------------------------------------------------------------


def test_claim_end_reasons() -> None:
    assert claim_end_reason(EndReason.RELEASED) is ClaimEndReason.NATURAL
    assert claim_end_reason(EndReason.STOPPED) is ClaimEndReason.NATURAL
    assert claim_end_reason(EndReason.USER_PTT) is ClaimEndReason.USER_PTT
    assert claim_end_reason(EndReason.PREEMPTED) is ClaimEndReason.PREEMPTED
    assert claim_end_reason(EndReason.DISPLACED) is ClaimEndReason.PREEMPTED
    assert claim_end_reason(EndReason.LEASE_EXPIRED) is ClaimEndReason.ERROR
    assert claim_end_reason("claim_busy") is ClaimEndReason.ERROR
    assert claim_end_reason("preempted") is ClaimEndReason.PREEMPTED
    assert claim_end_reason("superseded") is ClaimEndReason.PREEMPTED
    assert claim_end_reason("user_ptt") is ClaimEndReason.USER_PTT
    assert claim_end_reason(None) is ClaimEndReason.ERROR


CLAIM_NOTICES = st.one_of(
    st.tuples(st.just(FocusState.FOREGROUND), st.none()),
    st.tuples(st.just(FocusState.BACKGROUND), st.none()),
    st.tuples(st.just(FocusState.NONE), st.sampled_from(list(EndReason))),
)
CLAIM_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("notice"), CLAIM_NOTICES),
        st.tuples(st.just("dropped"), st.sampled_from(["preempted", "claim_busy", "superseded", "error"])),
        st.tuples(st.just("discard"), st.sampled_from(["user_ptt", "preempted", "error"])),
        st.tuples(st.just("expire"), st.floats(0, 3 * TTL)),
        st.tuples(st.just("cancel"), st.sampled_from(list(ClaimEndReason))),
    ),
    max_size=25,
)


@settings(max_examples=300)
@given(steps=CLAIM_STEPS, direct=st.booleans())
def test_on_claim_end_comes_exactly_once_whatever_happens(
    steps: list[tuple[str, object]], direct: bool
) -> None:
    core = HostCore(TTL)
    claim = InputClaim(on_mic_frame=_heard)
    ends: list[c.EndClaim] = []
    effect_id = "e-none"
    if direct:  # ctx.start_input_claim: focus answers the acquire
        ref = core.open_claim("caller", claim)
        ends += [x for x in core.claim_acquired(ref.claim_id, "c-1", "pending") if isinstance(x, c.EndClaim)]
    else:  # returned by a tool, held until focus starts it
        effect_id = core.hold("caller", claim, 0.0).effect_id
    after_end: list[c.Command] = []
    for step, arg in steps:
        if step == "notice":
            state, reason = arg  # type: ignore[misc]
            out = core.on_focus(
                notice("c-1", state, effect_id=effect_id, reason=reason, channel=Channel.COMMS), 0
            )
        elif step == "dropped":
            out = core.on_effect_dropped(effect_id, arg)  # type: ignore[arg-type]
        elif step == "discard":
            out = core.discard(effect_id, arg)  # type: ignore[arg-type]
        elif step == "expire":
            out = core.expire(arg)  # type: ignore[arg-type]
        else:
            active = core.active_claim("caller")
            out = core.end_claim(active.claim_id, arg, release=True) if active else []  # type: ignore[arg-type]
        if ends:
            after_end += [x for x in out if isinstance(x, c.GrantClaim | c.MuteClaim | c.EndClaim)]
        ends += [x for x in out if isinstance(x, c.EndClaim)]
    ends += [x for x in core.stop() if isinstance(x, c.EndClaim)]
    assert len(ends) == 1 and after_end == []
    assert ends[0].claim.claim is claim and not core.claims and core.busy_claim() is None


def test_a_claim_follows_focus_and_its_end_reason_comes_from_the_notice() -> None:
    core = HostCore(TTL)
    held = core.hold("caller", InputClaim(on_mic_frame=_heard), 0.0)
    [grant] = core.on_focus(notice("c-1", FocusState.FOREGROUND, effect_id=held.effect_id), 0.0)
    assert isinstance(grant, c.GrantClaim) and grant.claim.activity_id == "c-1"
    assert kinds(core.on_focus(notice("c-1", FocusState.BACKGROUND), 0.0)) == ["MuteClaim"]
    [end] = core.on_focus(notice("c-1", FocusState.NONE, reason=EndReason.USER_PTT), 0.0)
    assert isinstance(end, c.EndClaim) and end.reason is ClaimEndReason.USER_PTT and not end.release
    assert core.on_focus(notice("c-1", FocusState.FOREGROUND), 0.0) == []


def test_a_direct_claim_applies_a_notice_that_came_before_the_acquire_reply() -> None:
    core = HostCore(TTL)
    assert core.on_focus(notice("c-2", FocusState.FOREGROUND, channel=Channel.COMMS), 10.0) == []
    ref = core.open_claim("caller", InputClaim(on_mic_frame=_heard))
    assert core.busy_claim() == ref
    out = core.claim_acquired(ref.claim_id, "c-2", "pending")
    assert kinds(out) == ["GrantClaim"]
    # An early notice is kept only a few seconds.
    core.on_focus(notice("c-3", FocusState.FOREGROUND, channel=Channel.COMMS), 10.0)
    core.expire(16.0)
    core.end_claim(ref.claim_id, ClaimEndReason.NATURAL, release=True)
    other = core.open_claim("caller", InputClaim(on_mic_frame=_heard))
    assert core.claim_acquired(other.claim_id, "c-3", "pending") == []


def test_a_failed_acquire_forgets_the_claim_without_an_end() -> None:
    core = HostCore(TTL)
    ref = core.open_claim("caller", InputClaim(on_mic_frame=_heard))
    core.forget_claim(ref.claim_id)
    assert core.busy_claim() is None and core.stop() == []
