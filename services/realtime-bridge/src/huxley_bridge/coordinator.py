"""The turn coordinator: every turn rule the bridge owns, as a pure state
machine. `handle(event, now)` returns the commands to run; time is passed in
(monotonic seconds) and nothing here does I/O.

One turn is live at a time (user, completion or injected); it holds DIALOG.
A user turn: PTT start interrupts whatever runs (see `_on_ptt_start` for the
order), mic audio goes to the model only while listening, PTT stop commits
and asks for a response (a press under `tap_ms` is an accidental tap: no
commit, and a status says so). The model's audio is streamed as the turn's
output stream (stream id = its DIALOG activity id), paced in real time.
Tool calls run one at a time in arrival order; each output goes back to the
model first, then its side effect: a stream or claim is held for the
barrier, CancelMedia and SetVolume act at once, PlaySound is queued right
after the follow-up request, anything else asks for a follow-up response.
When no response, tool or follow-up is left, the stream ends; once audio-io
reports it drained, `turn_end` hands the held effect to focus, which decides
what runs next (D5).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count
from typing import Any, Literal

from huxley_bridge import commands as c
from huxley_bridge import events as e
from huxley_bridge.effects import HeldEffect, hold
from huxley_bridge.outstream import OutputStream
from huxley_wire.audio import BYTES_PER_MS, silence
from huxley_wire.errors import ErrorCode
from huxley_wire.messages.bridge import ModelSpeakingEvent, StatusEvent, TranscriptEvent, TurnEvent
from huxley_wire.messages.focus import ActivityKind, ActivityMeta, Channel, EndReason, FocusState
from huxley_wire.messages.skills import (
    TOOL_TIMEOUT_S,
    AudioStreamEffect,
    CancelMediaEffect,
    InputClaimEffect,
    PlaySoundEffect,
    SetVolumeEffect,
)

TurnKind = Literal["user", "completion", "injected"]
Phase = Literal[
    "starting", "listening", "committed", "thinking", "speaking", "draining", "ending", "ended", "cancelled"
]
# What the bus hears of a phase: `starting` is not announced; `ending` (turn_end sent) is `ended`.
_ANNOUNCED: dict[str, str | None] = {"ending": "ended", "starting": None}
MAX_REMEMBERED_TURNS = 64
HOLDER = "bridge"  # D8: one bridge per site, a fixed holder id


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


class TurnCoordinator:
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
        self._injects: deque[e.RunInjectRequested] = deque()  # accepted while a turn ran
        self._completions: deque[e.CompletionRequested] = deque()
        self._done_injects: OrderedDict[str, None] = OrderedDict()
        self.tools: dict[str, str] = {}
        self._last_stream: str | None = None  # the latest turn's output stream (our own audio)
        self._now = 0.0
        self._out: list[c.Command] = []
        self._handlers: dict[type, Callable[[Any], None]] = {
            e.PttStart: self._on_ptt_start,
            e.PttStop: self._on_ptt_stop,
            e.MicAudio: self._on_mic,
            e.Played: self._on_played,
            e.ActivityChanged: self._on_activity,
            e.RunInjectRequested: self._on_run_inject,
            e.CompletionRequested: self._on_completion,
            e.ToolsChanged: self._on_tools,
            e.InterruptDone: self._on_interrupt_done,
            e.InterruptFailed: self._on_interrupt_failed,
            e.DialogAcquired: self._on_acquired,
            e.DialogAcquireFailed: self._on_acquire_failed,
            e.AudioCleared: self._on_cleared,
            e.TurnEndDone: self._on_turn_end_done,
            e.ToolDone: self._on_tool_done,
            e.ToolFailed: self._on_tool_failed,
            e.ModelConnected: self._on_connected,
            e.ModelDisconnected: self._on_disconnected,
            e.ResponseCreated: self._on_response_created,
            e.AudioDelta: self._on_audio_delta,
            e.AssistantTranscript: self._on_assistant_transcript,
            e.UserTranscript: self._on_user_transcript,
            e.FunctionCall: self._on_function_call,
            e.ResponseDone: self._on_response_done,
            e.ModelError: self._on_model_error,
            e.Tick: lambda _: None,
        }

    # -- the one entry point ------------------------------------------------------------
    def handle(self, event: e.Event, now: float) -> list[c.Command]:
        self._now = now
        self._out = []
        self._handlers[type(event)](event)
        self._release()
        out, self._out = self._out, []
        return out

    def next_deadline(self) -> float | None:
        """When `handle(Tick(), now)` has something to do (pacing, a drain limit)."""
        t = self.turn
        if t is None or not t.live:
            return None
        times = []
        if t.stop_deadline is not None and t.phase == "listening":
            times.append(t.stop_deadline)
        if not t.gates and t.activity_id is not None:
            due = t.out.next_release_at()
            if due is not None:
                times.append(due)
        if t.drain_deadline is not None:
            times.append(t.drain_deadline)
        return min(times) if times else None

    def snapshot(self) -> dict[str, Any]:
        t = self.turn
        return {
            "turn_id": t.id if t else None,
            "turn_kind": t.kind if t else None,
            "phase": t.phase if t else None,
            "connected": self.connected,
            "queued_injects": [q.inject_id for q in self._injects],
            "queued_completions": len(self._completions),
            "tools": sorted(self.tools),
        }

    # -- small helpers --------------------------------------------------------------------
    def _emit(self, command: c.Command) -> None:
        self._out.append(command)

    def _publish(self, kind: str, message: Any) -> None:
        self._emit(c.Publish(kind, message))

    def _status(self, message: str) -> None:
        self._publish("status", StatusEvent(message=message))

    def _phase(self, t: Turn, phase: Phase, reason: str | None = None) -> None:
        t.phase = phase
        announced = _ANNOUNCED.get(phase, phase)
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
        """Drop a finished turn once nothing can refer to it any more."""
        if t is not self.turn and t.call_running is None:
            self._turns.pop(t.id, None)

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

    # -- PTT --------------------------------------------------------------------------------
    def _on_ptt_start(self, ev: e.PttStart) -> None:
        # A turn whose turn_end is sent is over here; focus's interrupt handles what it became.
        old = self.turn if self._busy() else None
        # 1. drop flag, 2. the turn's pending effects dropped
        if old is not None:
            self._cancel(old, "user_ptt")
        new: Turn | None = None
        if not self.connected:
            self._remember(self._ignored_presses, ev.press_id)
            self._status(self.config.offline_message)
        else:
            new = self._new_turn("user", press_id=ev.press_id, press_start_us=ev.ts_us)
            self.turn = new
        # 3.-5. content stopped, a claim ends, dialog released: focus, acked by every holder.
        # Focus decides the claim cases atomically (FOCUS-4): a PTT within
        # claim_grace_ms of a claim starting is `ignored`; one that ends a claim
        # starts no turn (`ended_claim`).
        token = next(self._tokens)
        self._interrupts[token] = Interrupting(token, old, new)
        self._emit(c.Interrupt(token, int(self.config.claim_grace_ms)))

    def _on_interrupt_done(self, ev: e.InterruptDone) -> None:
        pending = self._interrupts.pop(ev.token, None)
        if pending is None:
            return
        old, new = pending.old, pending.new
        if ev.ignored or ev.ended_claim:  # the press started a claim or ended one: no turn
            if new is not None:
                self._remember(self._ignored_presses, new.press_id or "")
                self._drop_turn(new)
                new = None
            if ev.ignored:  # focus changed nothing: give back the DIALOG of a turn we dropped
                if old is None:
                    self._start_next()  # what waited behind the press may run now
                    return
                if old.activity_id is not None:
                    self._emit(c.ReleaseActivity(old.activity_id))
        # 6. client audio cleared; the final played position is known once audio-io replied
        self._clear_then(None, lambda: self._truncate(old))
        # 7. speaking flag cleared, 8. the model's response cancelled
        if old is not None:
            self._speaking_off(old)
        if self._in_flight is not None and old is not None and self._in_flight.turn_id == old.id:
            self._send({"type": "response.cancel"})
        if self.connected:
            self._send({"type": "input_audio_buffer.clear"})
        if new is None or new is not self.turn or not new.live:
            self._start_next()
            return
        self._acquire(new)
        self._listen(new)

    def _on_interrupt_failed(self, ev: e.InterruptFailed) -> None:
        self._status(f"focus did not answer the interrupt: {ev.message}")
        self._on_interrupt_done(e.InterruptDone(ev.token))

    def _listen(self, t: Turn) -> None:
        self._phase(t, "listening")
        for pcm in t.backlog:
            self._append(t, pcm)
        t.backlog.clear()
        if t.press_stop_us is not None:
            self._maybe_close_press(t)

    def _append(self, t: Turn, pcm: bytes) -> None:
        t.appended_ms += len(pcm) / BYTES_PER_MS
        self._emit(c.AppendAudio(pcm))

    def _on_mic(self, ev: e.MicAudio) -> None:
        t = self.turn
        if t is None or t.kind != "user" or not t.live or not self.connected:
            return
        if ev.press_id is not None and ev.press_id != t.press_id:
            return  # a frame of another press
        if t.press_stop_us is not None and (t.expected_frames is None or t.mic_frames >= t.expected_frames):
            return  # after the release: only the press's own late frames still count
        t.mic_frames += 1
        if t.phase == "listening":
            self._append(t, ev.pcm)
            if t.press_stop_us is not None:
                self._maybe_close_press(t)
        elif t.phase == "starting" and t.backlog_ms < self.config.mic_backlog_ms:
            t.backlog.append(ev.pcm)  # the interrupt is still running: keep it for the model
            t.backlog_ms += len(ev.pcm) / BYTES_PER_MS

    def _on_ptt_stop(self, ev: e.PttStop) -> None:
        if ev.press_id in self._ignored_presses:
            del self._ignored_presses[ev.press_id]
            return
        t = self.turn
        if t is None or t.press_id != ev.press_id or not t.live or t.press_stop_us is not None:
            return
        t.press_stop_us = ev.ts_us
        t.expected_frames = ev.frames
        t.stop_deadline = self._now + self.config.mic_tail_wait_ms / 1000
        self._maybe_close_press(t)  # still starting: `_listen` does it once the interrupt is done

    def _maybe_close_press(self, t: Turn) -> None:
        """Commit once every frame of the press is in (the mic and PTT subjects
        are separate: the stop can overtake its last frames), or at the deadline."""
        if t.phase != "listening" or t.press_stop_us is None:
            return
        complete = t.expected_frames is None or t.mic_frames >= t.expected_frames
        if complete or (t.stop_deadline is not None and self._now >= t.stop_deadline):
            t.stop_deadline = None
            self._close_press(t)

    def _close_press(self, t: Turn) -> None:
        assert t.press_stop_us is not None
        held_ms = (t.press_stop_us - t.press_start_us) / 1000
        if held_ms < self.config.tap_ms or t.appended_ms < self.config.min_commit_ms:
            self._send({"type": "input_audio_buffer.clear"})
            self._status(self.config.too_short_message)
            t.phase = "draining"  # nothing to play: straight to the barrier
            self._end_turn(t, "too_short")
            return
        self._send({"type": "input_audio_buffer.commit", "event_id": f"commit-{t.id}"})
        self._phase(t, "committed")
        self._request_response(t)

    # -- cancelling ----------------------------------------------------------------------------
    def _cancel(self, t: Turn, reason: str) -> None:
        """Drop the turn: nothing more of it is heard or done. Focus (the PTT
        interrupt) or the caller takes care of its DIALOG activity."""
        t.cancelled = True
        if t.inject_id is not None:
            self._remember_inject(t.inject_id)  # a retried run_inject must not speak it again
        t.out.abort()
        t.calls.clear()
        t.want_response = False
        t.sounds.clear()
        self._discard_effect(t, "user_ptt" if reason == "user_ptt" else "error")
        self._phase(t, "cancelled", reason)
        if self.turn is t:
            self.turn = None

    def _drop_turn(self, t: Turn) -> None:
        """A turn that never started (it only ended a claim, focus said no)."""
        t.cancelled = True
        t.phase = "cancelled"
        if self.turn is t:
            self.turn = None
        if t.activity_id is not None:
            self._emit(c.ReleaseActivity(t.activity_id))
        self._forget(t)

    def _truncate(self, old: Turn | None) -> None:
        """Cut the model's memory of the old turn's speech at what was played."""
        if old is None or not self.connected:
            return
        for item_id, end_ms in old.out.truncations(old.played_ms):
            self._send(
                {
                    "type": "conversation.item.truncate",
                    "item_id": item_id,
                    "content_index": 0,
                    "audio_end_ms": end_ms,
                }
            )
        self._forget(old)

    def _lose_floor(self, t: Turn, reason: str) -> None:
        """Our DIALOG went away under a live turn (lease lost, stop_all)."""
        in_flight = self._in_flight is not None and self._in_flight.turn_id == t.id
        self._speaking_off(t)
        self._cancel(t, reason)
        if in_flight:
            self._send({"type": "response.cancel"})
        self._clear_then(t.activity_id, lambda: self._truncate(t))
        self._start_next()

    # -- focus events -----------------------------------------------------------------------------
    def _on_activity(self, ev: e.ActivityChanged) -> None:
        if ev.holder != HOLDER or ev.state != FocusState.NONE:
            return
        self._remember(self._lost_activities, ev.activity_id)
        t = self.turn
        if t is not None and t.activity_id == ev.activity_id and t.live and t.phase != "ending":
            self._lose_floor(t, str(ev.reason or EndReason.ERROR))

    def _on_acquired(self, ev: e.DialogAcquired) -> None:
        t = self._turns.get(ev.turn_id)
        if t is None or not t.live:
            self._emit(c.ReleaseActivity(ev.activity_id))  # a turn that is gone: give it back
            return
        t.activity_id = self._last_stream = ev.activity_id
        t.gates.discard("activity")
        if t.end_when_acquired:
            self._end_turn(t)

    def _on_acquire_failed(self, ev: e.DialogAcquireFailed) -> None:
        t = self._turns.get(ev.turn_id)
        if t is None or not t.live:
            return
        self._status(f"can't take the speaker: {ev.message}")
        in_flight = self._in_flight is not None and self._in_flight.turn_id == t.id
        self._cancel(t, "no_dialog")
        if in_flight:
            self._send({"type": "response.cancel"})
        self._start_next()

    def _on_cleared(self, ev: e.AudioCleared) -> None:
        for stream, played_ms in ev.played.items():  # audio-io's word on what was heard
            for t in self._turns.values():
                if t.activity_id == stream:
                    t.played_ms = max(t.played_ms, played_ms)
        after = self._clears.pop(ev.token, None)
        if after is not None:
            after()

    def _on_played(self, ev: e.Played) -> None:
        t = self.turn if self.turn is not None and self.turn.activity_id == ev.stream_id else None
        if t is None:
            t = next((x for x in self._turns.values() if x.activity_id == ev.stream_id), None)
        if t is None:
            return
        t.played_ms = max(t.played_ms, ev.played_ms)
        if ev.drained and t is self.turn and t.phase == "draining" and t.out.eos_released:
            self._end_turn(t)

    # -- injected and completion turns --------------------------------------------------------------
    def _on_run_inject(self, ev: e.RunInjectRequested) -> None:
        t = self.turn
        if ev.inject_id in self._done_injects:  # its turn_end is sent
            self._emit(c.InjectReply(ev.inject_id, "already_done"))
            return
        if (t is not None and t.inject_id == ev.inject_id and t.live) or any(
            q.inject_id == ev.inject_id for q in self._injects
        ):
            self._emit(c.InjectReply(ev.inject_id, "already_running"))
            return
        self._emit(c.InjectReply(ev.inject_id, "accepted"))
        if not self.connected:
            self._end_unspoken(ev)
        elif self._busy():
            self._injects.append(ev)
        else:
            self._start_inject(ev)

    def _end_unspoken(self, ev: e.RunInjectRequested) -> None:
        """The model is unreachable: hand the inject's DIALOG back at once."""
        self._status(self.config.offline_message)
        self._remember_inject(ev.inject_id)
        self._emit(c.EndTurn(f"{self._prefix}{next(self._ids)}", ev.activity_id, ev.inject_id, None))

    def _remember_inject(self, inject_id: str) -> None:
        self._remember(self._done_injects, inject_id)

    def _remember(self, memory: OrderedDict[str, None], key: str) -> None:
        """Add to a bounded memory (the oldest entries go first)."""
        memory[key] = None
        while len(memory) > self.config.remembered_injects:
            memory.popitem(last=False)

    def _start_inject(self, ev: e.RunInjectRequested) -> None:
        t = self._new_turn("injected", inject_id=ev.inject_id, prompt=ev.prompt)
        self.turn = t
        if ev.activity_id in self._lost_activities:
            self._acquire(t)  # focus's grant is gone (a PTT came between): ask again
        else:
            t.activity_id = ev.activity_id
        # Clear what is left of our own audio before the turn's. Only ours: paused
        # content keeps its buffered audio on audio-io and resumes from it (BRIDGE-16).
        t.gates.add("clear")
        self._clear_then(self._last_stream or ev.activity_id, lambda: t.gates.discard("clear"))
        if t.activity_id is not None:
            self._last_stream = t.activity_id
        self._user_text(ev.prompt)
        self._request_response(t)

    def _on_completion(self, ev: e.CompletionRequested) -> None:
        if not self.connected:
            self._status(self.config.offline_message)
        elif self._busy():
            self._completions.append(ev)
        else:
            self._start_completion(ev)

    def _start_completion(self, ev: e.CompletionRequested) -> None:
        t = self._new_turn("completion", prompt=ev.prompt, silence_ms=ev.silence_ms)
        self.turn = t
        self._acquire(t)
        self._user_text(ev.prompt)
        self._request_response(t)

    def _user_text(self, text: str) -> None:
        self._send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": text}],
                },
            }
        )

    def _start_next(self) -> None:
        """Run what was accepted while another turn held the floor."""
        if self._busy() or not self.connected:
            return
        if self._injects:
            self._start_inject(self._injects.popleft())
        elif self._completions:
            self._start_completion(self._completions.popleft())

    # -- responses ---------------------------------------------------------------------------------
    def _request_response(self, t: Turn) -> None:
        t.want_response = True
        t.responses += 1
        self._phase(t, "thinking")
        self._pump()

    def _pump(self) -> None:
        """Send the live turn's response.create once the model has no response
        in progress (a cancelled one must finish first)."""
        t = self.turn
        if (
            self._in_flight is not None
            or not self.connected
            or t is None
            or not t.live
            or not t.want_response
        ):
            return
        t.want_response = False
        event_id = f"create-{t.id}-{t.responses}"
        self._in_flight = InFlight(t.id, event_id)
        self._send({"type": "response.create", "event_id": event_id})

    def _response_turn(self, response_id: str) -> Turn | None:
        """The live turn a model event belongs to, or None (stale or foreign)."""
        f = self._in_flight
        if f is None or f.response_id != response_id:
            return None
        t = self._turns.get(f.turn_id)
        return t if t is not None and t is self.turn and t.live else None

    def _on_response_created(self, ev: e.ResponseCreated) -> None:
        if self._in_flight is not None and self._in_flight.response_id is None:
            self._in_flight.response_id = ev.response_id

    def _on_audio_delta(self, ev: e.AudioDelta) -> None:
        t = self._response_turn(ev.response_id)
        if t is None:
            return
        t.out.write(ev.pcm, ev.item_id)
        if not t.speaking:
            t.speaking = True
            self._publish("model_speaking", ModelSpeakingEvent(value=True, turn_id=t.id))
            self._phase(t, "speaking")

    def _on_assistant_transcript(self, ev: e.AssistantTranscript) -> None:
        f = self._in_flight
        turn_id = f.turn_id if f is not None and f.response_id == ev.response_id else None
        if ev.text:
            self._publish("transcript", TranscriptEvent(role="assistant", text=ev.text, turn_id=turn_id))

    def _on_user_transcript(self, ev: e.UserTranscript) -> None:
        t = self.turn
        if ev.text:
            self._publish(
                "transcript", TranscriptEvent(role="user", text=ev.text, turn_id=t.id if t else None)
            )

    def _on_function_call(self, ev: e.FunctionCall) -> None:
        t = self._response_turn(ev.response_id)
        if t is None:
            return
        t.calls.append(Call(ev.call_id, ev.name, ev.arguments))
        self._dispatch(t)

    def _on_response_done(self, ev: e.ResponseDone) -> None:
        f = self._in_flight
        if f is None or f.response_id not in (ev.response_id, None):
            return
        self._in_flight = None
        t = self._turns.get(f.turn_id)
        if t is not None and t is self.turn and t.live:
            if ev.status == "failed":
                self._status("the model could not answer")
            if t.call_running is not None or t.calls:
                t.done_waiting_tools = True
            else:
                self._after_response(t)
        self._pump()

    def _on_model_error(self, ev: e.ModelError) -> None:
        f = self._in_flight
        if f is not None and ev.event_id == f.event_id and f.response_id is None:
            # Our response.create was refused: the turn goes on without it.
            self._status(f"the model refused the request: {ev.message}")
            self._on_response_done(e.ResponseDone(response_id="", status="failed"))

    def _after_response(self, t: Turn) -> None:
        t.done_waiting_tools = False
        if t.follow_up and not t.broken:
            t.follow_up = False
            if t.responses < self.config.follow_up_limit:
                self._request_response(t)
                for pcm in t.sounds:  # PlaySound: right after the follow-up is requested
                    t.out.write(pcm)
                t.sounds.clear()
                return
            self._status("stopped a chain of tool calls that went on too long")
        for pcm in t.sounds:
            t.out.write(pcm)
        t.sounds.clear()
        self._finish(t)

    # -- tools -----------------------------------------------------------------------------------------
    def _on_tools(self, ev: e.ToolsChanged) -> None:
        self.tools = dict(ev.tools)

    def _dispatch(self, t: Turn) -> None:
        """Start the next queued call, one at a time, in arrival order."""
        while t.call_running is None and t.calls:
            call = t.calls.popleft()
            try:
                args = json.loads(call.arguments) if call.arguments.strip() else {}
            except json.JSONDecodeError as exc:
                self._tool_error(t, call, "invalid_arguments", f"arguments are not valid JSON: {exc}")
                continue
            if not isinstance(args, dict):
                self._tool_error(t, call, "invalid_arguments", "arguments must be a JSON object")
                continue
            skill = self.tools.get(call.name)
            if skill is None:
                self._tool_error(
                    t, call, ErrorCode.UNKNOWN_TOOL.value, f"no skill offers the tool {call.name!r}"
                )
                continue
            t.call_running = call
            self._call_turn[call.call_id] = t.id
            self._emit(c.CallTool(call.call_id, skill, call.name, args, t.id, self.config.tool_timeout_s))

    def _output(self, call_id: str, output: str) -> None:
        self._send(
            {
                "type": "conversation.item.create",
                "item": {"type": "function_call_output", "call_id": call_id, "output": output},
            }
        )

    def _tool_error(self, t: Turn, call: Call, error: str, message: str) -> None:
        self._output(call.call_id, json.dumps({"error": error, "tool": call.name, "message": message}))
        t.follow_up = True

    def _tool_finished(self, call_id: str) -> tuple[Turn, Call] | None:
        turn_id = self._call_turn.pop(call_id, None)
        t = self._turns.get(turn_id) if turn_id else None
        if t is None or t.call_running is None or t.call_running.call_id != call_id:
            return None
        call, t.call_running = t.call_running, None
        return t, call

    def _continue_tools(self, t: Turn) -> None:
        if not t.live:
            self._forget(t)
            return
        self._dispatch(t)
        if t.call_running is None and t.done_waiting_tools:
            self._after_response(t)

    def _on_tool_done(self, ev: e.ToolDone) -> None:
        found = self._tool_finished(ev.call_id)
        if found is None:
            return
        t, call = found
        effect = ev.reply.side_effect
        if self.connected:
            self._output(call.call_id, ev.reply.output)  # the output goes back first
        if not t.live or t.broken:  # an effect of a dropped turn never runs
            if isinstance(effect, AudioStreamEffect | InputClaimEffect):
                reason: Literal["user_ptt", "error"] = "error" if t.broken else "user_ptt"
                self._emit(c.DiscardEffect(ev.reply.host, effect.effect_id, reason))
            self._after_dropped_call(t)
            return
        if isinstance(effect, AudioStreamEffect | InputClaimEffect):
            kept, dropped = hold(t.effect, HeldEffect(ev.reply.host, ev.reply.skill, effect))
            t.effect = kept
            if dropped is not None:
                self._emit(c.DiscardEffect(dropped.host, dropped.effect_id, "superseded"))
        elif isinstance(effect, CancelMediaEffect):
            self._emit(c.StopChannel(Channel.CONTENT))
            t.follow_up = True
        elif isinstance(effect, SetVolumeEffect):
            self._emit(c.SetVolume(effect.level))
            t.follow_up = True
        elif isinstance(effect, PlaySoundEffect):
            try:
                t.sounds.append(base64.b64decode(effect.pcm_b64, validate=True))
            except (binascii.Error, ValueError):
                self._status(f"{ev.reply.skill}: a sound that is not valid base64 was skipped")
            t.follow_up = True
        else:
            t.follow_up = True
        self._continue_tools(t)

    def _on_tool_failed(self, ev: e.ToolFailed) -> None:
        found = self._tool_finished(ev.call_id)
        if found is None:
            return
        t, call = found
        if self.connected:
            error = "tool_failed" if ev.code == ErrorCode.TOOL_FAILED.value else ev.code
            self._output(call.call_id, json.dumps({"error": error, "tool": call.name, "message": ev.message}))
        if t.live and not t.broken:
            t.follow_up = True
            self._continue_tools(t)
        else:
            self._after_dropped_call(t)

    def _after_dropped_call(self, t: Turn) -> None:
        if t.live and t.broken:
            self._finish(t)  # the session dropped while the tool ran: wind the turn up
        else:
            self._forget(t)

    # -- the end of a turn ----------------------------------------------------------------------------
    def _finish(self, t: Turn) -> None:
        """No response, tool or follow-up left: end the stream, then the barrier."""
        if t.phase in ("draining", "ending"):
            return
        if t.kind == "completion" and t.silence_ms and t.out.has_audio:
            t.out.write(silence(t.silence_ms))
        if t.out.has_audio:
            t.out.end()
            self._phase(t, "draining")
        else:
            t.phase = "draining"
            self._end_turn(t)

    def _end_turn(self, t: Turn, reason: str | None = None) -> None:
        """The barrier: speech played out; hand the held effect to focus."""
        if t.phase == "ending" or not t.live:
            return
        if t.activity_id is None:
            if "activity" in t.gates:  # DIALOG not granted yet: end once it is
                t.end_when_acquired = True
                return
            self._discard_effect(t, "error")
        self._speaking_off(t)
        t.drain_deadline = None
        if t.broken:
            self._discard_effect(t, "error")
        if t.inject_id is not None:
            self._remember_inject(t.inject_id)
        if t.activity_id is None:
            t.phase = "ended"
            if self.turn is t:
                self.turn = None
            self._forget(t)
            self._start_next()
            return
        pending = t.effect.pending() if t.effect is not None else None
        t.effect = None
        self._emit(c.EndTurn(t.id, t.activity_id, t.inject_id, pending))
        self._phase(t, "ending", reason)

    def _on_turn_end_done(self, ev: e.TurnEndDone) -> None:
        t = self._turns.get(ev.turn_id)
        if t is None:
            return
        if not ev.ok:
            self._status("focus did not take the end of the turn; its DIALOG may linger until the lease ends")
        t.phase = "ended"
        if self.turn is t:
            self.turn = None
        self._forget(t)
        self._start_next()

    # -- the model session -------------------------------------------------------------------------------
    def _on_connected(self, ev: e.ModelConnected) -> None:
        self.connected = True
        self._in_flight = None
        self._start_next()

    def _on_disconnected(self, ev: e.ModelDisconnected) -> None:
        self.connected = False
        self._in_flight = None
        self._status(self.config.offline_message)
        while self._injects:  # accepted but unspoken: give their DIALOG back
            self._end_unspoken(self._injects.popleft())
        self._completions.clear()
        t = self.turn
        if t is None or not t.live or t.phase in ("draining", "ending"):
            return
        t.broken = True
        t.want_response = False
        t.follow_up = False
        t.calls.clear()
        t.backlog.clear()
        self._discard_effect(t, "error")
        if t.call_running is None:
            self._finish(t)  # what was already published plays out, then the barrier

    # -- output pacing ---------------------------------------------------------------------------------------
    def _release(self) -> None:
        t = self.turn
        if t is not None and t.stop_deadline is not None:
            self._maybe_close_press(t)
        if t is None or not t.live or t.gates or t.activity_id is None:
            return
        for frame in t.out.release(self._now):
            self._emit(c.PublishAudio(t.activity_id, frame.seq, frame.pcm, frame.eos))
            if frame.eos:
                t.drain_deadline = t.out.expected_end(self._now) + self.config.drain_grace_s
        if t.phase == "draining" and t.drain_deadline is not None and self._now >= t.drain_deadline:
            self._status("the speaker never reported the end of the speech; moving on")
            self._end_turn(t)
