"""What the skill-host core asks its bus adapter to do, in order.

The core (huxley_skill_host.core) decides; the adapter performs. A command
that only changes local objects (start or stop a pump, open or close a
claim's mic) is carried out at once, so focus notices keep their order; one
that waits on the bus or on a skill (release, `on_claim_end`, a patience
hook, a stream's last steps) runs as a task, or is awaited where the caller
must wait for it (a discard, the host stopping).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from huxley_sdk import ClaimEndReason, InputClaim
from huxley_skill_host.held import HeldEffect
from huxley_wire.messages.focus import EndReason

# How a stream finished: its iterator ran out (`ended`), it or its factory
# raised (`failed`), or focus (or the host stopping) stopped it (`stopped`).
Outcome = Literal["ended", "failed", "stopped"]


@dataclass(frozen=True, slots=True)
class ClaimRef:
    """A claim as the core knows it (`activity_id` once focus named it)."""

    claim_id: int
    skill: str
    claim: InputClaim
    effect_id: str | None = None
    activity_id: str | None = None


@dataclass(frozen=True, slots=True)
class StartStream:
    """A held stream starts for this focus activity: set up its player."""

    activity_id: str
    held: HeldEffect


@dataclass(frozen=True, slots=True)
class StartPump:
    """Call the stream's factory (anew after a pause) and send its frames."""

    activity_id: str


@dataclass(frozen=True, slots=True)
class StopPump:
    """Close the stream's iterator (its `finally` saves the position); the
    pump reports back with `HostCore.pump_done`."""

    activity_id: str


@dataclass(frozen=True, slots=True)
class StreamOver:
    """The stream is finished: `ended` drains, releases and asks for its
    completion turn; `failed` releases with `error`; `stopped` does nothing."""

    activity_id: str
    held: HeldEffect
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class RunPatienceHook:
    """Await the stream's `on_patience_expired` (bounded) before acking."""

    activity_id: str
    held: HeldEffect


@dataclass(frozen=True, slots=True)
class GrantClaim:
    """The claim holds COMMS in the foreground: open its mic, start its speaker."""

    claim: ClaimRef


@dataclass(frozen=True, slots=True)
class MuteClaim:
    """The claim is in the background: close its mic."""

    claim: ClaimRef


@dataclass(frozen=True, slots=True)
class EndClaim:
    """The one end of a claim: stop its speaker and mic, release COMMS if
    asked, then `on_claim_end(reason)`."""

    claim: ClaimRef
    reason: ClaimEndReason
    release: bool


@dataclass(frozen=True, slots=True)
class Release:
    """Give an activity back to focus."""

    activity_id: str
    reason: EndReason


@dataclass(frozen=True, slots=True)
class EffectDropped:
    """A held effect will never start (dropped, discarded, expired or the
    host stopping); for a claim an `EndClaim` follows."""

    held: HeldEffect
    reason: str
    expired: bool = False


@dataclass(frozen=True, slots=True)
class UnknownEffect:
    """Focus or the bridge dropped an effect we no longer hold (logged)."""

    effect_id: str
    reason: str
    via: Literal["effect_dropped", "discard"]


@dataclass(frozen=True, slots=True)
class ForeignEffect:
    """Focus started an effect we don't hold (expired, or from a previous run
    with our instance id): logged; a `Release` follows unless it is over."""

    activity_id: str
    effect_id: str


Command = (
    StartStream
    | StartPump
    | StopPump
    | StreamOver
    | RunPatienceHook
    | GrantClaim
    | MuteClaim
    | EndClaim
    | Release
    | EffectDropped
    | UnknownEffect
    | ForeignEffect
)
