"""A turn as the coordinator keeps it, and the coordinator's settings.

Plain data: every concern of the coordinator (presses, injects, responses,
tool calls, output) reads and changes these; none of them does I/O.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from huxley_bridge.effects import HeldEffect
from huxley_bridge.outstream import OutputStream
from huxley_wire.messages.skills import TOOL_TIMEOUT_S
from huxley_wire.permissions import BRIDGE_HOLDER

TurnKind = Literal["user", "completion", "injected"]
Phase = Literal[
    "starting", "listening", "committed", "thinking", "speaking", "draining", "ending", "ended", "cancelled"
]
# What the bus hears of a phase: `starting` is not announced; `ending` (turn_end sent) is `ended`.
ANNOUNCED: dict[str, str | None] = {"ending": "ended", "starting": None}
MAX_REMEMBERED_TURNS = 64
HOLDER = BRIDGE_HOLDER  # D8: one bridge per site, a fixed holder id (its identity grants it)


@dataclass(frozen=True)
class CoordinatorConfig:
    tap_ms: float = 133.0  # shorter presses are accidental taps
    min_commit_ms: float = 100.0  # less audio than this is not worth a commit
    claim_grace_ms: float = 300.0  # focus ignores a PTT this soon after a claim started
    tool_timeout_s: float = TOOL_TIMEOUT_S + 5.0  # the host's own limit, plus the trip
    follow_up_limit: int = 8  # responses per turn, so two tools can't ping-pong forever
    lead_ms: float = 200.0  # output pacing: at most this far ahead of real time
    drain_grace_s: float = 5.0  # wait this long past the expected end for `drained`
    mic_backlog_ms: float = 10_000.0  # mic audio kept while the interrupt runs
    mic_tail_wait_ms: float = 250.0  # after PTT stop, wait this long at most for the press's last frames
    interface: str = "assistant"  # the bridge's DIALOG interface
    too_short_message: str = "That was a very short press. Hold the button while you talk."
    offline_message: str = "I can't reach my voice right now. I'll keep trying."
    remembered_injects: int = 256  # ids kept (injects done, lost activities, ignored presses)


@dataclass
class Call:
    call_id: str
    name: str
    arguments: str


@dataclass
class Turn:
    id: str
    kind: TurnKind
    out: OutputStream
    phase: Phase = "starting"
    activity_id: str | None = None
    inject_id: str | None = None
    prompt: str | None = None
    silence_ms: int = 0
    # user turns
    press_id: str | None = None
    press_start_us: int = 0
    press_stop_us: int | None = None
    backlog: list[bytes] = field(default_factory=list)
    backlog_ms: float = 0.0
    appended_ms: float = 0.0
    mic_frames: int = 0  # frames of this press taken in
    expected_frames: int | None = None  # how many the edge published (from PTT stop)
    stop_deadline: float | None = None  # commit by then even if frames are missing
    # output is held while a gate is closed: "activity" (no stream id yet), "clear"
    gates: set[str] = field(default_factory=set)
    # responses and tools
    want_response: bool = False
    responses: int = 0
    calls: deque[Call] = field(default_factory=deque)
    call_running: Call | None = None
    done_waiting_tools: bool = False  # the response is done, tools still run
    follow_up: bool = False
    sounds: list[bytes] = field(default_factory=list)
    effect: HeldEffect | None = None
    # state flags
    speaking: bool = False
    cancelled: bool = False
    broken: bool = False  # the model session dropped under it
    end_when_acquired: bool = False
    played_ms: float = 0.0
    # what the model said, per assistant item: the heard transcript and truncation
    item_ms: dict[str, float] = field(default_factory=dict)  # audio the model made (late deltas too)
    response_items: set[str] = field(default_factory=set)  # items of the response in flight
    said: dict[str, str] = field(default_factory=dict)  # final transcripts waiting to be heard
    heard_ms: dict[str, int] | None = None  # set once a cancelled turn's truncation point is known
    drain_deadline: float | None = None

    @property
    def live(self) -> bool:
        return not self.cancelled and self.phase not in ("ended", "cancelled")


@dataclass
class InFlight:
    """The model's one response in progress (we never ask for two at once)."""

    turn_id: str
    event_id: str
    response_id: str | None = None


@dataclass
class Interrupting:
    token: int
    old: Turn | None
    new: Turn | None
