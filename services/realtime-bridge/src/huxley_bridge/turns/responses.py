"""The model's side of a turn: one response in progress at most, the events
of that response (audio, transcripts, tool calls, its end) mapped to the
turn that asked for it, follow-ups, and the session coming and going.

`response.create` waits until the previous response (a cancelled one
included) is done, so every `response.created` belongs to the turn that
asked and late events of a cancelled response are dropped, not played.
When the socket drops, the live turn is wound up: what was published plays
out, its held effect is discarded and it reaches its barrier.
"""

from __future__ import annotations

from huxley_bridge import events as e
from huxley_bridge.turns.state import CoreState
from huxley_bridge.turns.turn import Call, InFlight, Turn
from huxley_wire.audio import BYTES_PER_MS
from huxley_wire.messages.bridge import ModelSpeakingEvent, TranscriptDeltaEvent, TranscriptEvent


class Responses(CoreState):
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

    def _owner(self, response_id: str) -> Turn | None:
        """The turn whose response this is, live or cancelled under it."""
        f = self._in_flight
        if f is None or f.response_id != response_id:
            return None
        return self._turns.get(f.turn_id)

    def _on_audio_delta(self, ev: e.AudioDelta) -> None:
        owner = self._owner(ev.response_id)
        if owner is not None:  # what the model made, heard or not: the truncation's measure
            owner.item_ms[ev.item_id] = owner.item_ms.get(ev.item_id, 0.0) + len(ev.pcm) / BYTES_PER_MS
            owner.response_items.add(ev.item_id)
            if owner.cancelled:
                owner.out.mark_cut(ev.item_id)  # came after the press: never heard
        t = self._response_turn(ev.response_id)
        if t is None:
            return
        t.out.write(ev.pcm, ev.item_id)
        if not t.speaking:
            t.speaking = True
            self._publish("model_speaking", ModelSpeakingEvent(value=True, turn_id=t.id))
            self._phase(t, "speaking")

    def _on_assistant_transcript(self, ev: e.AssistantTranscript) -> None:
        """The item's whole transcript: published once the user heard it (cut
        to what was heard if the reply was cancelled under it)."""
        t = next((x for x in self._turns.values() if ev.item_id in x.item_ms), None)
        if t is None:
            t = self._owner(ev.response_id)
        if t is None:
            if ev.text:
                self._publish("transcript", TranscriptEvent(role="assistant", text=ev.text))
            return
        t.said[ev.item_id] = ev.text
        self._release_said(t)

    def _on_transcript_delta(self, ev: e.AssistantTranscriptDelta) -> None:
        """Live text while the model speaks (a cancelled reply's is dropped)."""
        t = self._response_turn(ev.response_id)
        if t is not None and ev.delta:
            delta = TranscriptDeltaEvent(role="assistant", delta=ev.delta, turn_id=t.id, item_id=ev.item_id)
            self._publish("transcript_delta", delta)

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
        if t is not None:
            t.response_items.clear()
            if t.cancelled and t.heard_ms is not None:  # truncated already: nothing refers to it now
                self._forget(t)
        if t is not None and t is self.turn and t.live:
            if ev.status == "failed":
                self._status(f"the model could not answer{': ' + ev.error if ev.error else ''}")
            if t.call_running is not None or t.calls:
                t.done_waiting_tools = True
            else:
                self._after_response(t)
        self._pump()

    def _on_model_error(self, ev: e.ModelError) -> None:
        f = self._in_flight
        if f is None:
            return
        refused = ev.event_id == f.event_id and f.response_id is None  # our response.create
        # A server error mid-response: no response.done may follow, so the turn must not wait for one.
        died = ev.event_id is None and f.response_id is not None and "server_error" in (ev.kind, ev.code)
        if refused:  # the turn goes on without it
            self._status(f"the model refused the request: {ev.message}")
            self._on_response_done(e.ResponseDone("", "failed"))
        elif died:
            self._on_response_done(e.ResponseDone(f.response_id or "", "failed", error=ev.message))

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
            self._end_unspoken(self._injects.popleft(), "the connection to the model dropped")
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
