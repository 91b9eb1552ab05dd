"""The model session's life, as a pure state machine: when to connect and
reconnect (backoff with an audible cue), what the session is told
(session.update: persona + skills + last summary, tools from the manifests),
the idle limit, the summary made at every disconnect, and the daily cost
with its warn / canary / kill-switch thresholds.

Time and the local day are passed in. The adapter runs the commands
(`Connect`, `Close`, `StoreSummary`, `PlayCue`, `ToolsUpdated`, and the
coordinator's `SendModel` / `Publish`) and reports back through the methods.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import count
from typing import Any, Literal

from huxley_bridge import commands as c
from huxley_bridge.cost import CostMeter, Level, Pricing, Thresholds
from huxley_bridge.instructions import Voice, session_update
from huxley_bridge.reconnect import ReconnectSchedule
from huxley_bridge.summary import Transcript, chained
from huxley_bridge.tools import ToolRegistry
from huxley_wire.messages.bridge import CostEvent, SessionEvent, StateEvent, StatusEvent
from huxley_wire.messages.skills import Manifest

SESSION_UPDATE_ID = "session-update-"  # our session.update event ids: an error naming one answers it
State = Literal["offline", "connecting", "connected", "waiting", "rotating", "budget", "stopped"]
PublicState = Literal["IDLE", "CONNECTING", "CONVERSING"]


@dataclass(frozen=True, slots=True)
class Connect:
    attempt: int  # 0 for the first connect or a planned rotation


@dataclass(frozen=True, slots=True)
class Close:
    reason: Literal["idle", "reset", "budget", "shutdown", "persona"]


@dataclass(frozen=True, slots=True)
class StoreSummary:
    text: str


@dataclass(frozen=True, slots=True)
class PlayCue:
    """The "still trying to reach the model" cue (from the 4th attempt)."""

    attempt: int


@dataclass(frozen=True, slots=True)
class Announce:
    """skills.announce with the session language: hosts reconfigure their
    skills for it and re-publish their manifests (SKILLS-9)."""

    language: str


@dataclass(frozen=True, slots=True)
class ToolsUpdated:
    """For the coordinator: tool name -> skill."""

    tools: dict[str, str]


LifecycleCommand = (
    Connect | Close | StoreSummary | PlayCue | Announce | ToolsUpdated | c.SendModel | c.Publish
)


@dataclass(frozen=True)
class LifecycleConfig:
    model: str = "gpt-realtime"
    transcription_model: str = "whisper-1"
    idle_limit_s: float = 55 * 60
    offline_message: str | None = None  # set: never connect, say this once
    simulated: bool = False  # offline mode (no OpenAI key) with the simulator as the voice


class SessionLifecycle:
    def __init__(
        self,
        config: LifecycleConfig,
        voice: Voice,
        registry: ToolRegistry | None = None,
        meter: CostMeter | None = None,
        schedule: ReconnectSchedule | None = None,
    ) -> None:
        self.config = config
        self.voice = voice
        self.registry = registry or ToolRegistry()
        self.meter = meter or CostMeter(Pricing(), Thresholds())
        self.schedule = schedule or ReconnectSchedule()
        self.state: State = "stopped"
        self.next_attempt_at: float | None = None
        self.last_activity = 0.0
        self.summary: str | None = None  # the last conversation's, told to the next session
        self.transcript = Transcript()
        self.rejected: str | None = None  # the model refused this session's settings: why
        self._update_ids = count(1)
        self._out: list[LifecycleCommand] = []

    # -- helpers --------------------------------------------------------------------------------
    def _take(self) -> list[LifecycleCommand]:
        out, self._out = self._out, []
        return out

    def _publish(self, kind: str, message: Any) -> None:
        self._out.append(c.Publish(kind, message))

    def _session_event(self, message: str = "") -> None:
        connected = self.state == "connected"
        self._publish(
            "session",
            SessionEvent(
                connected=connected,
                offline=self.offline,
                simulated=self.config.simulated,
                model=self.config.model,
                attempt=self.schedule.attempt,
                message=message,
            ),
        )
        self._publish("state", StateEvent(value=self.public_state))

    @property
    def offline(self) -> bool:
        """Offline mode: no OpenAI key, so the voice is the simulator or nothing."""
        return self.state == "offline" or self.config.simulated

    @property
    def public_state(self) -> PublicState:
        """What the client shows: IDLE, CONNECTING or CONVERSING."""
        if self.state == "connected":
            return "CONVERSING"
        return "IDLE" if self.state in ("offline", "budget", "stopped") else "CONNECTING"

    def session_update(self, full: bool = True, transcription: bool = False) -> dict[str, Any]:
        """The session.update, with an event id so an error answering it can be told apart."""
        event = session_update(
            self.voice,
            model=self.config.model,
            transcription_model=self.config.transcription_model,
            prompt_contexts=self.registry.prompt_contexts(),
            tools=self.registry.definitions(),
            summary=self.summary,
            full=full,
            transcription=transcription,
        )
        return {**event, "event_id": f"{SESSION_UPDATE_ID}{next(self._update_ids)}"}

    def _connect(self, now: float) -> None:
        self.state = "connecting"
        self.next_attempt_at = None
        if self.schedule.cue:
            self._out.append(PlayCue(self.schedule.attempt))
        self._out.append(Connect(self.schedule.attempt))
        self._session_event()

    def _wait(self, now: float, message: str) -> None:
        delay = self.schedule.lost(now)
        self.state = "waiting"
        self.next_attempt_at = now + delay
        self._session_event(f"{message}; trying again in {delay:g} s (attempt {self.schedule.attempt})")

    def _summarize(self) -> None:
        """This session's summary, chained after the one it was given."""
        if not self.transcript.lines:
            return  # nothing new: the next session is told the same summary
        text = chained(self.summary, self.transcript)
        self.transcript.clear()
        if text:
            self.summary = text
            self._out.append(StoreSummary(text))

    # -- what the adapter reports -------------------------------------------------------------------
    def start(self, now: float, day: str) -> list[LifecycleCommand]:
        self.meter.roll(day)  # a spend restored from another day starts over
        self.last_activity = now
        if self.config.offline_message:
            self.state = "offline"
            self._session_event(self.config.offline_message)
            self._publish("status", StatusEvent(message=self.config.offline_message))
        elif self.meter.killed:
            self.state = "budget"
            self._session_event(self._budget_message())
        else:
            self._connect(now)
        return self._take()

    def connect_ok(self, now: float) -> list[LifecycleCommand]:
        if self.state != "connecting":
            return []
        self.state = "connected"
        self.rejected = None
        self.schedule.succeeded(now)
        self.last_activity = now
        self._out.append(c.SendModel(self.session_update(full=True)))
        self._out.append(ToolsUpdated(self.registry.tools()))
        self._session_event("connected")
        return self._take()

    def connect_failed(self, now: float, message: str) -> list[LifecycleCommand]:
        if self.state != "connecting":
            return []
        self._wait(now, f"can't reach the model: {message}")
        return self._take()

    def dropped(self, now: float, reason: str) -> list[LifecycleCommand]:
        """The socket closed (on purpose or not)."""
        if self.state not in ("connected", "rotating", "connecting"):
            return []
        planned = self.state == "rotating"
        self.rejected = None
        self._summarize()
        if planned:
            self.schedule.reset()
            self._connect(now)
        else:
            self._wait(now, f"the model connection dropped ({reason})")
        return self._take()

    def model_error(self, event_id: str | None, code: str | None, message: str) -> list[LifecycleCommand]:
        """An `error` from the model. One answering our session.update means the
        session runs without the persona, tools or voice it was meant to have:
        not ok until the next connect, and said so."""
        if not (event_id or "").startswith(SESSION_UPDATE_ID) or self.state != "connected":
            return []
        self.rejected = f"the model refused the session settings ({code or 'error'}): {message}"
        self._publish("status", StatusEvent(message=f"The voice is not set up right: {self.rejected}"))
        self._session_event(self.rejected)
        return self._take()

    def activity(self, now: float) -> None:
        self.last_activity = now

    def heard(self, role: str, text: str) -> None:
        self.transcript.add(role, text)

    def usage(self, usage: Mapping[str, Any], day: str) -> list[LifecycleCommand]:
        crossed = self.meter.add(usage, day)
        if crossed is not None:
            self._publish(
                "cost",
                CostEvent(day=self.meter.day, usd=round(self.meter.usd, 4), level=crossed.name.lower()),  # type: ignore[arg-type]
            )
            t = self.meter.thresholds
            if crossed == Level.WARN:
                self._publish("status", StatusEvent(message=f"Model cost today passed ${t.warn_usd:.2f}."))
            elif crossed == Level.CANARY:
                self._publish(
                    "status",
                    StatusEvent(
                        message=f"Model cost today passed ${t.canary_usd:.2f}: is something looping?"
                    ),
                )
            elif crossed == Level.KILL and self.state in ("connected", "connecting", "waiting"):
                self._publish("status", StatusEvent(message=self._budget_message()))
                was_connected = self.state == "connected"
                self.state = "budget"
                self.next_attempt_at = None
                if was_connected:
                    self._summarize()
                    self._out.append(Close("budget"))
                self._session_event(self._budget_message())
        return self._take()

    def _budget_message(self) -> str:
        return (
            f"Today's model budget (${self.meter.thresholds.kill_usd:.2f}) is spent; "
            "the voice is off until tomorrow."
        )

    def manifest(self, manifest: Manifest, now: float) -> list[LifecycleCommand]:
        if self.registry.apply(manifest, now):
            self._tools_changed()
        return self._take()

    def _tools_changed(self) -> None:
        self._out.append(ToolsUpdated(self.registry.tools()))
        if self.state == "connected":
            self._out.append(c.SendModel(self.session_update(full=False)))

    def tick(self, now: float, day: str, busy: bool) -> list[LifecycleCommand]:
        """`busy`: a turn is live (no rotation under it)."""
        if self.registry.expire(now):
            self._tools_changed()
        if self.meter.roll(day) and self.state == "budget":
            self.schedule.reset()
            self._connect(now)
        if self.state == "waiting" and self.next_attempt_at is not None and now >= self.next_attempt_at:
            self._connect(now)
        elif self.state == "connected" and busy:
            self.last_activity = now
        elif self.state == "connected" and now - self.last_activity >= self.config.idle_limit_s:
            self.state = "rotating"  # a fresh session, told the summary of this one
            self._out.append(Close("idle"))
        return self._take()

    def wake(self, now: float) -> list[LifecycleCommand]:
        """The client's `wake_word`: someone wants to talk, so a session that
        is waiting out its backoff tries again now (the count goes on)."""
        if self.state == "waiting":
            self._connect(now)
        return self._take()

    def reset(self) -> list[LifecycleCommand]:
        """The client's `reset`: a fresh conversation that remembers nothing."""
        self.transcript.clear()
        self.summary = None
        if self.state == "connected":
            self.state = "rotating"
            self._out.append(Close("reset"))
        return self._take()

    def set_language(self, voice: Voice, language: str) -> list[LifecycleCommand]:
        """The client's `set_language`: the persona's prompt and transcription
        hint for it now, and the skills' descriptions once they re-announce."""
        self.voice = voice
        self._out.append(Announce(language))
        if self.state == "connected":
            self._out.append(c.SendModel(self.session_update(full=False, transcription=True)))
        return self._take()

    def switch_persona(self, voice: Voice, summary: str | None) -> list[LifecycleCommand]:
        """The client picked another persona: this conversation ends (its summary
        stored under the persona it belonged to) and a fresh session opens with
        the new voice, instructions and summary (the voice can't change mid-session)."""
        if self.state == "connected":
            self._summarize()
            self.state = "rotating"
            self._out.append(Close("persona"))
        self.transcript.clear()
        self.voice = voice
        self.summary = summary
        self._session_event("persona switched")
        return self._take()

    def stop(self) -> list[LifecycleCommand]:
        if self.state in ("connected", "connecting", "rotating"):
            self._summarize()
            self._out.append(Close("shutdown"))
        self.state = "stopped"
        self.next_attempt_at = None
        return self._take()

    def next_deadline(self) -> float | None:
        times = [t for t in (self.next_attempt_at, self.registry.next_expiry()) if t is not None]
        if self.state == "connected":
            times.append(self.last_activity + self.config.idle_limit_s)
        return min(times, default=None)
