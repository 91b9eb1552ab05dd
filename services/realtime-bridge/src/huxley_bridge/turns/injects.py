"""Injected and completion turns: `run_inject` (focus already holds DIALOG
for it) and `completion` (a stream ended with `on_complete_prompt`; the
bridge asks for DIALOG). Either speaks a prompt as a user text message and
asks for a response. One that arrives while a turn runs waits here and runs
after that turn; `run_inject` is idempotent on its inject id.
"""

from __future__ import annotations

from huxley_bridge import commands as c
from huxley_bridge import events as e
from huxley_bridge.turns.state import CoreState


class Injects(CoreState):
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
        if not self.connected:
            # Not taken: focus gives the DIALOG back (a NONE we ignore) and keeps
            # the inject queued until we renew ready again (FOCUS-12).
            self._remember(self._refused_activities, ev.activity_id)
            self._emit(c.InjectReply(ev.inject_id, "unavailable"))
            return
        self._emit(c.InjectReply(ev.inject_id, "accepted"))
        if self._busy():
            self._injects.append(ev)
        else:
            self._start_inject(ev)

    def _end_unspoken(self, ev: e.RunInjectRequested, why: str) -> None:
        """An accepted inject that waited here for the floor when the model went
        away: it ends unspoken (focus counts it done; it cannot re-queue what
        the bridge accepted), its DIALOG handed back with `turn_end`."""
        self._status(f"An announcement was not spoken: {why}.")
        self._remember_inject(ev.inject_id)
        self._emit(c.EndTurn(f"{self._prefix}{next(self._ids)}", ev.activity_id, ev.inject_id, None))

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
