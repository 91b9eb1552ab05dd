"""User turns: a press, its mic audio and its release; cancelling a turn;
and what focus says about the turn's DIALOG.

PTT start interrupts whatever runs, in this order: the old turn's drop flag
and its held effect discarded, focus `interrupt` (content stopped, a claim
ended, DIALOG released), audio-io `clear`, `response.cancel`,
`input_audio_buffer.clear`, then DIALOG for the new turn, which starts
listening; once the clear is answered, the old speech is truncated at what
was heard. Mic audio that arrives meanwhile is kept and sent in order.
PTT stop commits once every frame of the press is in (a press under
`tap_ms` is an accidental tap: no commit, a status says so).
"""

from __future__ import annotations

from huxley_bridge import commands as c
from huxley_bridge import events as e
from huxley_bridge.turns.state import CoreState
from huxley_bridge.turns.turn import HOLDER, Interrupting, Turn
from huxley_wire.audio import BYTES_PER_MS
from huxley_wire.messages.focus import EndReason, FocusState


class Presses(CoreState):
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
            self._cancel_response(old)
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
        """Cut the model's memory of the old turn's speech at what was played,
        and its transcript at what was heard."""
        if old is None:
            return
        cuts = old.out.truncations(old.played_ms)
        old.heard_ms = dict(cuts)
        self._release_said(old)
        for item_id, end_ms in cuts if self.connected else []:
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
            self._cancel_response(t)
        self._clear_then(t.activity_id, lambda: self._truncate(t))
        self._start_next()

    # -- focus events -----------------------------------------------------------------------------
    def _on_activity(self, ev: e.ActivityChanged) -> None:
        if ev.holder != HOLDER or ev.state != FocusState.NONE:
            return
        if ev.activity_id in self._refused_activities:
            return  # an inject we answered `unavailable`: focus took its DIALOG back, nothing of ours
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
            self._cancel_response(t)
        self._start_next()
