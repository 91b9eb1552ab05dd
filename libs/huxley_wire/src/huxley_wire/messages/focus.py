"""Focus service messages: the arbiter (channels, activities) and the inject
scheduler.

Subjects:
  focus.rpc               requests below (one serialized actor answers them)
  focus.notify.<holder>   focus -> holder requests (FocusChange, PatienceExpired,
                          EffectDropped); the holder acks at once with `Ok`
  bridge.inject           focus -> bridge RunInject (see messages.bridge)
  focus.event.activity    ActivityEvent on every transition
  focus.event.queue       QueueEvent whenever the inject queue changes
  focus.event.inject      InjectEvent on every inject lifecycle step
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from huxley_wire.codec import Message, Ok, Request


class Channel(StrEnum):
    DIALOG = "dialog"
    COMMS = "comms"
    ALERT = "alert"
    CONTENT = "content"


DEFAULT_CHANNEL_PRIORITY: dict[Channel, int] = {
    Channel.DIALOG: 100,
    Channel.COMMS: 150,
    Channel.ALERT: 200,
    Channel.CONTENT: 300,
}


class FocusState(StrEnum):
    FOREGROUND = "foreground"
    BACKGROUND = "background"
    NONE = "none"


class Behavior(StrEnum):
    PRIMARY = "primary"
    MAY_DUCK = "may_duck"
    MUST_PAUSE = "must_pause"
    MUST_STOP = "must_stop"


class ContentType(StrEnum):
    MIXABLE = "mixable"
    NONMIXABLE = "nonmixable"


class InjectPriority(StrEnum):
    NORMAL = "normal"
    BLOCK_BEHIND_COMMS = "block_behind_comms"
    PREEMPT = "preempt"


class EndReason(StrEnum):
    """Why an activity got NONE."""

    RELEASED = "released"  # its holder released it (a claim's natural end)
    REPLACED = "replaced"  # same-identity acquire
    DISPLACED = "displaced"  # lost the foreground with no patience
    PATIENCE_EXPIRED = "patience_expired"
    USER_PTT = "user_ptt"  # the user-PTT interrupt
    PREEMPTED = "preempted"  # a PREEMPT inject broke a claim
    STOPPED = "stopped"  # stop_foreground / stop_all / stop_channel (CancelMedia)
    LEASE_EXPIRED = "lease_expired"  # the holder stopped renewing
    ERROR = "error"


class ActivityKind(StrEnum):
    TURN = "turn"  # a user, completion or injected turn on DIALOG
    STREAM = "stream"  # a skill's AudioStream on CONTENT
    CLAIM = "claim"  # a skill's InputClaim on COMMS
    OTHER = "other"


class ActivityMeta(Message):
    """What focus carries for observers; it does not change arbitration."""

    kind: ActivityKind = ActivityKind.OTHER
    skill: str | None = None
    effect_id: str | None = None  # the skill-host's handle on the side effect
    label: str | None = None  # AudioStream.label
    title: str | None = None  # InputClaim.title
    preroll_ms: int = 0
    turn_id: str | None = None
    inject_id: str | None = None


class Acquired(Message):
    activity_id: str
    state: FocusState | Literal["pending"]  # pending: silent under a higher foreground


# -- requests on focus.rpc ---------------------------------------------------------
class Acquire(Request[Acquired]):
    """Ask for a channel. The reply comes once the arbiter decided; the holder
    learns every later state through focus.notify.<holder>.

    COMMS holds one claim at a time: a second acquire on COMMS while one is live
    gets the `claim_busy` error."""

    op = "acquire"
    holder: str
    channel: Channel
    interface: str
    content_type: ContentType = ContentType.NONMIXABLE
    patience_ms: int = Field(default=0, ge=0)
    meta: ActivityMeta = Field(default_factory=ActivityMeta)


class Release(Request[Ok]):
    op = "release"
    holder: str
    activity_id: str
    reason: EndReason = EndReason.RELEASED


class Renewed(Message):
    activity_ids: list[str]  # what focus believes the holder holds


class Renew(Request[Renewed]):
    """Lease heartbeat for every activity of `holder`: while it holds one it
    has been told of, send at least every 1 s (silent for 3 s, it loses them
    all); while it holds nothing, at least every 10 s (it stays present for
    30 s: the bridge's presence is what lets injects fire). FOCUS-14.

    `ready` is the bridge's word on whether it can run an injected turn now
    (its model session is up): focus fires injects only while the bridge's
    lease is alive and its last stated `ready` is not false. None: not
    stated, taken as ready (holders that predate it)."""

    op = "renew"
    holder: str
    ready: bool | None = None


class Interrupted(Message):
    ended_claim: bool
    claim_age_ms: int | None = None  # how long the (ended or spared) claim had held COMMS
    stopped: list[str] = Field(default_factory=list)  # activity ids sent to NONE
    ignored: bool = False  # claim_grace_ms spared a young claim: nothing changed


class Interrupt(Request[Interrupted]):
    """The user-PTT interrupt: content to NONE whatever its patience, a live
    claim ends with USER_PTT, dialog released, the inject queue kept. The reply
    comes after every holder acked its notification."""

    op = "interrupt"
    reason: EndReason = EndReason.USER_PTT
    # When > 0 and the live claim started less than this many ms ago, nothing
    # happens and the reply says `ignored` (the reference ignores a PTT within
    # 300 ms of a claim starting); deciding it here keeps the check atomic.
    claim_grace_ms: int = Field(default=0, ge=0, le=60_000)


class StopForeground(Request[Ok]):
    op = "stop_foreground"


class StopAll(Request[Ok]):
    op = "stop_all"


class StopChannel(Request[Ok]):
    """CancelMedia: every activity of the channel to NONE at once."""

    op = "stop_channel"
    channel: Channel


class Injected(Message):
    inject_id: str
    # fired: running now; queued: waiting; dropped: equal to the one playing;
    # duplicate: this inject_id was already accepted (a retry)
    status: Literal["fired", "queued", "dropped", "duplicate"]
    # For wait=True: true when the caller should wait for InjectEvent done.
    will_notify_done: bool = False


class Inject(Request[Injected]):
    """inject_turn. `inject_id` is chosen by the caller and makes retries
    idempotent: the same id is accepted once."""

    op = "inject"
    inject_id: str = Field(min_length=1, max_length=64)
    prompt: str = Field(min_length=1, max_length=16 * 1024)
    priority: InjectPriority = InjectPriority.NORMAL
    dedup_key: str | None = None
    ttl_s: float | None = Field(default=None, gt=0)
    wait: bool = False  # inject_turn_and_wait
    skill: str | None = None


class PendingEffect(Message):
    """A stream or claim the ended turn produced, held at the barrier."""

    kind: Literal["stream", "claim"]
    host: str  # skill-host holder id that owns the effect
    skill: str
    effect_id: str
    content_type: ContentType = ContentType.NONMIXABLE
    patience_ms: int = 0
    label: str | None = None
    title: str | None = None
    preroll_ms: int = 0


class TurnEnded(Message):
    outcome: Literal["fired_inject", "started_claim", "started_stream", "idle"]
    inject_id: str | None = None
    effect_activity_id: str | None = None
    dropped_effect: str | None = None  # effect_id dropped (told to its host)


class TurnEnd(Request[TurnEnded]):
    """A turn's barrier. Focus applies the end-of-turn order (a queued PREEMPT,
    then BLOCK_BEHIND_COMMS, then the claim, then the stream, then the queue's
    head), acquires the winner on behalf of its holder, then releases the
    turn's DIALOG activity."""

    op = "turn_end"
    holder: str
    activity_id: str
    inject_id: str | None = None  # set when the turn was an injected one
    pending: PendingEffect | None = None


class ActivityView(Message):
    activity_id: str
    channel: Channel
    interface: str
    holder: str
    content_type: ContentType
    state: FocusState | Literal["pending"]
    patience_ms: int
    patience_deadline: float | None = None
    meta: ActivityMeta
    behavior: Behavior | None = None  # None while pending
    gain: float = 0.0  # what the mixer applies now


class InjectView(Message):
    inject_id: str
    prompt: str
    priority: InjectPriority
    dedup_key: str | None = None
    skill: str | None = None
    enqueued_at: float
    expires_at: float | None = None


class Snapshot(Message):
    seq: int
    channels: dict[Channel, list[ActivityView]]  # each stack, top first
    foreground: str | None  # activity id
    queue: list[InjectView]
    current_inject: InjectView | None = None
    holders: dict[str, float] = Field(default_factory=dict)  # holder -> lease deadline


class SnapshotRequest(Request[Snapshot]):
    op = "snapshot"


# -- focus -> holder notifications (requests on focus.notify.<holder>) ---------------
class FocusChange(Request[Ok]):
    op = "focus"
    seq: int
    activity_id: str
    channel: Channel
    interface: str
    state: FocusState
    behavior: Behavior
    gain: float
    ramp_ms: int
    reason: EndReason | None = None  # set with NONE
    meta: ActivityMeta = Field(default_factory=ActivityMeta)
    # Same-identity replacement: the new activity's FOREGROUND comes before the
    # old one's NONE; `replaces` names the old one so it can be silenced at once.
    replaces: str | None = None


class PatienceExpired(Request[Ok]):
    """Run on_patience_expired, then ack; NONE follows (even if it raised)."""

    op = "patience_expired"
    activity_id: str


class EffectDropped(Request[Ok]):
    """A pending effect will never start (PREEMPT at the barrier, claim_busy...)."""

    op = "effect_dropped"
    effect_id: str
    reason: Literal["preempted", "claim_busy", "superseded", "error"]


# -- events -------------------------------------------------------------------------
class ActivityEvent(Message):
    seq: int
    ts: float
    activity_id: str
    channel: Channel
    interface: str
    holder: str
    content_type: ContentType
    state: FocusState
    behavior: Behavior
    gain: float
    ramp_ms: int
    reason: EndReason | None = None
    meta: ActivityMeta = Field(default_factory=ActivityMeta)
    replaces: str | None = None  # see FocusChange.replaces


class QueueEvent(Message):
    seq: int
    queue: list[InjectView]
    current: InjectView | None = None


class InjectEvent(Message):
    inject_id: str
    status: Literal["queued", "fired", "done", "dropped", "replaced", "expired"]
    skill: str | None = None
    priority: InjectPriority | None = None
    dedup_key: str | None = None
