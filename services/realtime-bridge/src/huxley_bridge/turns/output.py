"""A turn's output and its end: frames released onto the turn's stream in
real time, what audio-io reports played (and cleared), and the barrier.

When no response, tool or follow-up is left, the stream ends (the last
frame carries end-of-stream); once audio-io reports it drained (or the
expected end plus `drain_grace_s` passed), `turn_end` hands the held effect
to focus, which decides what runs next (D5).
"""

from __future__ import annotations

from huxley_bridge import commands as c
from huxley_bridge import events as e
from huxley_bridge.outstream import joined
from huxley_bridge.turns.state import CoreState
from huxley_bridge.turns.turn import Turn
from huxley_wire.audio import silence


class Output(CoreState):
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
        self._release_said(t)
        if ev.drained and t is self.turn and t.phase == "draining" and t.out.eos_released:
            self._end_turn(t)

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
        self._release_said(t, final=True)  # what was said played out (or the speaker never told)
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

    # -- output pacing ---------------------------------------------------------------------------------------
    def _release(self) -> None:
        t = self.turn
        if t is not None and t.stop_deadline is not None:
            self._maybe_close_press(t)
        if t is None or not t.live or t.gates or t.activity_id is None:
            return
        for frame in joined(t.out.release(self._now)):
            self._emit(c.PublishAudio(t.activity_id, frame.seq, frame.pcm, frame.eos))
            if frame.eos:
                t.drain_deadline = t.out.expected_end(self._now) + self.config.drain_grace_s
        if t.phase == "draining" and t.drain_deadline is not None and self._now >= t.drain_deadline:
            self._status("the speaker never reported the end of the speech; moving on")
            self._end_turn(t)
