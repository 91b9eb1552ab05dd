"""What every concern of the turn coordinator shares: its state, the small
steps they all use (emit a command, announce a phase, open a turn), and the
steps one concern offers the others, declared here so each module depends
only on this one. `TurnCoordinator` inherits every concern and is the only
class that is complete.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import OrderedDict, deque
from collections.abc import Callable
from itertools import count
from typing import Any, Literal

from huxley_bridge import commands as c
from huxley_bridge import events as e
from huxley_bridge.heard import heard_text
from huxley_bridge.outstream import OutputStream
from huxley_bridge.turns.turn import (
    ANNOUNCED,
    MAX_REMEMBERED_TURNS,
    CoordinatorConfig,
    InFlight,
    Interrupting,
    Phase,
    Turn,
    TurnKind,
)
from huxley_wire.messages.bridge import ModelSpeakingEvent, StatusEvent, TranscriptEvent, TurnEvent
from huxley_wire.messages.focus import ActivityKind, ActivityMeta


class CoreState(ABC):
    def __init__(self, config: CoordinatorConfig | None = None, id_prefix: str = "t") -> None:
        self.config = config or CoordinatorConfig()
        self._prefix = id_prefix
        self._ids = count(1)
        self._tokens = count(1)
        self.turn: Turn | None = None  # the live turn
        self._turns: dict[str, Turn] = {}  # every turn still owed a reply or an event
        self._call_turn: dict[str, str] = {}  # call_id -> turn_id
        self.connected = False
        self._in_flight: InFlight | None = None
        self._ignored_presses: OrderedDict[str, None] = OrderedDict()  # presses whose stop is moot
        self._interrupts: dict[int, Interrupting] = {}
        self._clears: dict[int, Callable[[], None]] = {}
        self._lost_activities: OrderedDict[str, None] = OrderedDict()  # our DIALOG ids gone NONE
        self._refused_activities: OrderedDict[str, None] = OrderedDict()  # injects answered unavailable
        self._injects: deque[e.RunInjectRequested] = deque()  # accepted while a turn ran
        self._completions: deque[e.CompletionRequested] = deque()
        self._done_injects: OrderedDict[str, None] = OrderedDict()
        self.tools: dict[str, str] = {}
        self._last_stream: str | None = None  # the latest turn's output stream (our own audio)
        self._now = 0.0
        self._out: list[c.Command] = []

    # -- steps one concern offers the others -----------------------------------------------
    @abstractmethod
    def _maybe_close_press(self, t: Turn) -> None:
        """press: commit the press once all its frames are in (or at the deadline)."""

    @abstractmethod
    def _start_next(self) -> None:
        """injects: run what waited for the floor."""

    @abstractmethod
    def _end_unspoken(self, ev: e.RunInjectRequested, why: str) -> None:
        """injects: the model went away; hand an accepted inject's DIALOG back."""

    @abstractmethod
    def _request_response(self, t: Turn) -> None:
        """responses: ask the model for a (follow-up) response."""

    @abstractmethod
    def _after_response(self, t: Turn) -> None:
        """responses: a response and its tools are done; follow up or finish."""

    @abstractmethod
    def _dispatch(self, t: Turn) -> None:
        """calls: start the turn's next queued tool call."""

    @abstractmethod
    def _finish(self, t: Turn) -> None:
        """output: nothing is left to say; end the stream, then the barrier."""

    @abstractmethod
    def _end_turn(self, t: Turn, reason: str | None = None) -> None:
        """output: the barrier; hand the held effect to focus with `turn_end`."""

    # -- small helpers --------------------------------------------------------------------
    def _emit(self, command: c.Command) -> None:
        self._out.append(command)

    def _publish(self, kind: str, message: Any) -> None:
        self._emit(c.Publish(kind, message))

    def _status(self, message: str) -> None:
        self._publish("status", StatusEvent(message=message))

    def _phase(self, t: Turn, phase: Phase, reason: str | None = None) -> None:
        t.phase = phase
        announced = ANNOUNCED.get(phase, phase)
        if announced is None:
            return
        self._publish(
            "turn",
            TurnEvent(
                turn_id=t.id,
                kind=t.kind,
                phase=announced,  # type: ignore[arg-type]
                activity_id=t.activity_id,
                inject_id=t.inject_id,
                reason=reason,
            ),
        )

    def _send(self, event: dict[str, Any]) -> None:
        self._emit(c.SendModel(event))

    def _new_turn(self, kind: TurnKind, **fields: Any) -> Turn:
        t = Turn(
            id=f"{self._prefix}{next(self._ids)}", kind=kind, out=OutputStream(self.config.lead_ms), **fields
        )
        if len(self._turns) >= MAX_REMEMBERED_TURNS:  # a reply that never came must not leak turns
            for old_id in [k for k, v in self._turns.items() if v is not self.turn][: len(self._turns) // 2]:
                del self._turns[old_id]
        self._turns[t.id] = t
        return t

    def _acquire(self, t: Turn) -> None:
        t.gates.add("activity")
        meta = ActivityMeta(kind=ActivityKind.TURN, turn_id=t.id, inject_id=t.inject_id)
        self._emit(c.AcquireDialog(t.id, self.config.interface, meta))

    def _clear_then(self, stream_id: str | None, after: Callable[[], None]) -> None:
        token = next(self._tokens)
        self._clears[token] = after
        self._emit(c.ClearAudio(token, stream_id))

    def _busy(self) -> bool:
        """A turn is running (one whose `turn_end` is already sent no longer blocks)."""
        return self.turn is not None and self.turn.live and self.turn.phase != "ending"

    def _forget(self, t: Turn) -> None:
        """Drop a finished turn once nothing can refer to it any more (its
        response's last events still find it until that response is done)."""
        in_flight = self._in_flight is not None and self._in_flight.turn_id == t.id
        if t is not self.turn and t.call_running is None and not in_flight:
            self._turns.pop(t.id, None)

    def _cancel_response(self, t: Turn) -> None:
        """response.cancel of the turn's live response: what the model made of it
        so far was not all heard, so its items are truncated whatever was played."""
        for item_id in t.response_items:
            t.out.mark_cut(item_id)
        self._send({"type": "response.cancel"})

    def _release_said(self, t: Turn, final: bool = False) -> None:
        """Publish the assistant transcripts the user heard: a live turn's once its
        audio played (or at its end, `final`), a cancelled turn's cut at the
        truncation point once that is known."""
        for item_id, text in list(t.said.items()):
            if t.cancelled:
                if t.heard_ms is None:
                    continue
                total = t.item_ms.get(item_id, 0.0)
                text = heard_text(text, t.heard_ms.get(item_id, total), total)
            elif not final:
                span = t.out.items.get(item_id)
                if span is not None and span.end_ms > t.played_ms + 0.5:
                    continue
            del t.said[item_id]
            if text:
                line = TranscriptEvent(role="assistant", text=text, turn_id=t.id, item_id=item_id)
                self._publish("transcript", line)

    def _speaking_off(self, t: Turn) -> None:
        if t.speaking:
            t.speaking = False
            self._publish("model_speaking", ModelSpeakingEvent(value=False, turn_id=t.id))

    def _discard_effect(
        self, t: Turn, reason: Literal["user_ptt", "superseded", "preempted", "error"]
    ) -> None:
        if t.effect is not None:
            self._emit(c.DiscardEffect(t.effect.host, t.effect.effect_id, reason))
            t.effect = None

    def _remember_inject(self, inject_id: str) -> None:
        self._remember(self._done_injects, inject_id)

    def _remember(self, memory: OrderedDict[str, None], key: str) -> None:
        """Add to a bounded memory (the oldest entries go first)."""
        memory[key] = None
        while len(memory) > self.config.remembered_injects:
            memory.popitem(last=False)
