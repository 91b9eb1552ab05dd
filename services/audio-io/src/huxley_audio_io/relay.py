"""Bus events as client protocol messages: what the gateway tells the client.
Pure; it remembers only what a newly connected client must be told first
(the bridge state, the input mode, the focus panel, the inject queue).

The reference's progress `status` lines come from the bridge's events:
listening (a user turn's press), sent (its commit), responding (the first
audio of any reply), connecting (the model session is being opened) and
connected (it is up). Their text is the persona's `ui_strings` for those keys
in the session language, else the reference's own words."""

from __future__ import annotations

from typing import Any

from huxley_audio_io import client_protocol as out
from huxley_audio_io.focus_view import Change, FocusView, as_json, is_claim, is_stream
from huxley_wire.codec import validate
from huxley_wire.messages import bridge
from huxley_wire.messages.focus import EndReason, FocusState, QueueEvent

# The reference's defaults; a persona's ui_strings override any of them.
PROGRESS_DEFAULTS = {
    "listening": "Listening... (release to send)",
    "sent": "Sent — waiting for response...",
    "responding": "Responding...",
}
CONNECTING = {"en": "Connecting…", "es": "Conectando…", "fr": "Connexion…"}
CONNECTED = {
    "en": "Connected — hold the button to speak",
    "es": "Conectado — mantén el botón para hablar",
    "fr": "Connecté — maintenez le bouton pour parler",
}
TURN_PROGRESS = {"listening": "listening", "committed": "sent", "speaking": "responding"}

ASSISTANT_PTT = "assistant_ptt"
SKILL_CONTINUOUS = "skill_continuous"

CLAIM_END_REASONS = {
    EndReason.RELEASED: "natural",
    EndReason.REPLACED: "natural",
    EndReason.USER_PTT: "user_ptt",
    EndReason.PREEMPTED: "preempted",
}


class ClientRelay:
    def __init__(self) -> None:
        self.state = "IDLE"
        self.mode = ASSISTANT_PTT
        self.mode_claim: str | None = None
        self.queue: dict[str, Any] | None = None
        self.volume: int | None = None
        self.language = "en"
        self.ui_strings: dict[str, str] = {}  # the persona's, for the session language
        self.session: dict[str, Any] | None = None  # the bridge's last session event (offline mode)

    def progress(self, key: str) -> out.Out:
        """A progress status line in the session language."""
        if key in self.ui_strings:
            return out.status(self.ui_strings[key])
        if key == "connecting":
            return out.status(CONNECTING.get(self.language, CONNECTING["en"]))
        if key == "connected":
            return out.status(CONNECTED.get(self.language, CONNECTED["en"]))
        return out.status(PROGRESS_DEFAULTS[key])

    # -- focus -------------------------------------------------------------------
    def focus(self, change: Change) -> list[out.Out]:
        event = change.after
        messages = [out.dev_event("focus", as_json(event))]
        if is_claim(event):
            messages += self._claim(change)
        elif is_stream(event):
            messages += self._stream(change)
        return messages

    def queue_event(self, event: QueueEvent) -> list[out.Out]:
        self.queue = event.model_dump(mode="json")
        return [out.dev_event("queue", self.queue)]

    def _claim(self, change: Change) -> list[out.Out]:
        event = change.after
        claim_id = event.activity_id
        messages = []
        if change.started:
            messages.append(out.claim_started(claim_id, event.meta.skill, event.meta.title))
        if change.ended:
            reason = CLAIM_END_REASONS.get(event.reason or EndReason.ERROR, "error")
            messages.append(out.claim_ended(claim_id, reason))
        holds_mic = event.state is FocusState.FOREGROUND
        if holds_mic and self.mode_claim != claim_id:
            why = "claim_started" if change.started else "claim_resumed"
            messages.append(self._set_mode(SKILL_CONTINUOUS, why, claim_id))
        elif not holds_mic and self.mode_claim == claim_id:
            if event.state is FocusState.NONE:
                why = "claim_preempted" if event.reason is EndReason.PREEMPTED else "claim_ended"
            else:
                why = "claim_paused"
            messages.append(self._set_mode(ASSISTANT_PTT, why, None))
        return messages

    def _stream(self, change: Change) -> list[out.Out]:
        event = change.after
        if change.started:
            return [out.stream_started(event.activity_id, event.meta.label, event.meta.preroll_ms)]
        if change.ended:
            natural = event.reason is EndReason.RELEASED
            return [out.stream_ended(event.activity_id, "natural" if natural else "interrupted")]
        return []

    def _set_mode(self, mode: str, reason: str, claim_id: str | None) -> out.Out:
        self.mode, self.mode_claim = mode, claim_id
        return out.input_mode(mode, reason, claim_id)

    # -- bridge ------------------------------------------------------------------
    def bridge_event(self, kind: str, obj: dict[str, Any]) -> list[out.Out]:
        """Raises WireError when a known kind does not validate."""
        if kind == "state":
            before, self.state = self.state, validate(obj, bridge.StateEvent).value
            opening = self.state == "CONNECTING" and before != "CONNECTING"
            return [out.state(self.state)] + ([self.progress("connecting")] if opening else [])
        if kind == "status":
            return [out.status(validate(obj, bridge.StatusEvent).message)]
        if kind == "transcript":
            line = validate(obj, bridge.TranscriptEvent)
            return [out.transcript(line.role, line.text, line.item_id)]
        if kind == "transcript_delta":
            piece = validate(obj, bridge.TranscriptDeltaEvent)
            return [out.transcript_delta(piece.role, piece.delta, piece.item_id, piece.turn_id)]
        if kind == "model_speaking":
            return [out.model_speaking(validate(obj, bridge.ModelSpeakingEvent).value)]
        if kind == "turn":
            turn = validate(obj, bridge.TurnEvent)
            messages = [out.dev_event("turn", turn.model_dump(mode="json"))]
            step = TURN_PROGRESS.get(turn.phase)
            if step is not None and (turn.kind == "user" or step == "responding"):
                messages.append(self.progress(step))
            return messages
        if kind == "session":
            session = validate(obj, bridge.SessionEvent)
            self.session = session.model_dump(mode="json", exclude={"v"})
            messages = [out.dev_event("session", self.session)]
            if session.connected:  # the simulator's session too: the page badges offline mode
                messages.append(self.progress("connected"))
            return messages
        if kind == "tool_call":
            call = validate(obj, bridge.ToolCallEvent)
            payload = call.model_dump(mode="json", exclude={"v"})
            payload["has_audio_stream"] = call.action == "audio_stream"  # the reference's older field
            return [out.dev_event("tool_call", payload)]
        return [out.dev_event(kind, {k: v for k, v in obj.items() if k != "v"})]

    def snapshot(self, snap: bridge.BridgeSnapshot) -> list[out.Out]:
        """What the bridge's snapshot tells a client that heard no event yet."""
        messages: list[out.Out] = []
        if self.state != snap.state:
            self.state = snap.state
            messages.append(out.state(snap.state))
        if self.session is None:
            self.session = {
                "connected": snap.connected,
                "offline": snap.offline,
                "simulated": snap.simulated,
                "model": snap.model,
                "attempt": 0,
                "message": "",
            }
            messages.append(out.dev_event("session", self.session))
        return messages

    # -- a new client --------------------------------------------------------------
    def handshake(
        self, language: str | None, persona: str, personas: list[dict[str, str]], view: FocusView
    ) -> list[out.Out]:
        """hello, state, input_mode (the reference's order), then what the panels need."""
        messages = [
            out.hello(language, persona, personas),
            out.state(self.state),
            out.input_mode(self.mode, "idle", self.mode_claim),
            out.dev_event("focus_snapshot", {"activities": [as_json(a) for a in view.live()]}),
        ]
        if self.session is not None:  # offline mode is shown from the first frame
            messages.append(out.dev_event("session", self.session))
        if self.queue is not None:
            messages.append(out.dev_event("queue", self.queue))
        if self.volume is not None:
            messages.append(out.set_volume(self.volume))
        return messages
