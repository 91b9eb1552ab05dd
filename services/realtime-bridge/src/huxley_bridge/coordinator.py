"""The turn coordinator: every turn rule the bridge owns, as a pure state
machine. `handle(event, now)` returns the commands to run; time is passed in
(monotonic seconds) and nothing here does I/O.

One turn is live at a time (user, completion or injected); it holds DIALOG.
The rules live by concern in `huxley_bridge.turns`:

- `press`      PTT, the mic, the interrupt order, cancelling, focus's word on our DIALOG
- `injects`    injected and completion turns, and what waits for the floor
- `responses`  the model's one response in progress, its events, the session coming and going
- `calls`      tool calls, one at a time, and their side effects
- `output`     the turn's paced output stream, what audio-io played, the barrier (`turn_end`)

`state` holds what they share; this class puts them together and maps each
event to the concern that handles it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from huxley_bridge import commands as c
from huxley_bridge import events as e
from huxley_bridge.turns.calls import Calls
from huxley_bridge.turns.injects import Injects
from huxley_bridge.turns.output import Output
from huxley_bridge.turns.press import Presses
from huxley_bridge.turns.responses import Responses
from huxley_bridge.turns.turn import HOLDER, CoordinatorConfig, Turn

__all__ = ["HOLDER", "CoordinatorConfig", "Turn", "TurnCoordinator"]


class TurnCoordinator(Presses, Injects, Responses, Calls, Output):
    def __init__(self, config: CoordinatorConfig | None = None, id_prefix: str = "t") -> None:
        super().__init__(config, id_prefix)
        self._handlers: dict[type, Callable[[Any], None]] = {
            # press
            e.PttStart: self._on_ptt_start,
            e.PttStop: self._on_ptt_stop,
            e.MicAudio: self._on_mic,
            e.InterruptDone: self._on_interrupt_done,
            e.InterruptFailed: self._on_interrupt_failed,
            e.ActivityChanged: self._on_activity,
            e.DialogAcquired: self._on_acquired,
            e.DialogAcquireFailed: self._on_acquire_failed,
            # injects
            e.RunInjectRequested: self._on_run_inject,
            e.CompletionRequested: self._on_completion,
            # responses
            e.ModelConnected: self._on_connected,
            e.ModelDisconnected: self._on_disconnected,
            e.ResponseCreated: self._on_response_created,
            e.AudioDelta: self._on_audio_delta,
            e.AssistantTranscript: self._on_assistant_transcript,
            e.AssistantTranscriptDelta: self._on_transcript_delta,
            e.UserTranscript: self._on_user_transcript,
            e.FunctionCall: self._on_function_call,
            e.ResponseDone: self._on_response_done,
            e.ModelError: self._on_model_error,
            # calls
            e.ToolsChanged: self._on_tools,
            e.ToolDone: self._on_tool_done,
            e.ToolFailed: self._on_tool_failed,
            # output
            e.Played: self._on_played,
            e.AudioCleared: self._on_cleared,
            e.TurnEndDone: self._on_turn_end_done,
            e.Tick: lambda _: None,  # time passed: `_release` below does the pacing
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
