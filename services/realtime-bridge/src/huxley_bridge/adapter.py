"""The bridge's bus adapter: the turn coordinator and the session lifecycle
(both pure) run against the world — focus, audio-io, skill-hosts and storage
over NATS, and the model over the Realtime socket.

One loop owns both machines. Every input (a bus message, a request's reply,
a model event, a timer) is an item on one queue, handled in arrival order,
and the commands that come back are executed in order. A command that is a
request runs in a task and feeds its reply back as an event, so a slow skill
or a dead peer never stalls the loop; requests to focus, to audio-io and to
storage each keep their order through a lane of their own (the coordinator
relies on focus seeing them in the order it asked).

Here: the loop, the lifecycle's commands, the Realtime socket (connect, the
reader, the drop) and what the bus brings in. The requests to focus,
audio-io and the skill-hosts are `peers.BusRequests`; storage is
`storage_link.StorageLink`; the reconnect cue is `cue_player.CuePlayer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from nats.aio.client import Client

from huxley_bridge import commands as c
from huxley_bridge import events as e
from huxley_bridge.coordinator import HOLDER, CoordinatorConfig, TurnCoordinator
from huxley_bridge.cost import CostMeter
from huxley_bridge.cue_player import CuePlayer
from huxley_bridge.health import PublishHealth
from huxley_bridge.instructions import Voice
from huxley_bridge.lane import Lane
from huxley_bridge.lifecycle import (
    Announce,
    Close,
    Connect,
    LifecycleCommand,
    LifecycleConfig,
    PlayCue,
    SessionLifecycle,
    StoreSummary,
    ToolsUpdated,
)
from huxley_bridge.mic_run import MicRun, joined_appends, take_run
from huxley_bridge.model import ModelEndpoint, ModelSession, ModelUnavailable
from huxley_bridge.peers import BusRequests, Spawn
from huxley_bridge.reconnect import ReconnectSchedule
from huxley_bridge.settings import BridgeSettings
from huxley_bridge.storage_link import StorageLink
from huxley_bridge.tools import ToolRegistry
from huxley_runtime.focus_client import FocusClient
from huxley_runtime.logging import get_logger
from huxley_runtime.persona import Persona, PersonaError, load_persona
from huxley_wire.audio import AudioFrame, encode_frame, now_us
from huxley_wire.codec import encode
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages import audio as am
from huxley_wire.messages import skills as sm
from huxley_wire.messages.bridge import BridgeSnapshot, InjectAccepted, StatusEvent, TranscriptEvent
from huxley_wire.messages.focus import FocusChange, FocusState
from huxley_wire.permissions import BRIDGE_HOLDER
from huxley_wire.subjects import Subjects

log = get_logger(component="adapter")

INJECT_REPLY_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class _LifeCall:
    """A call into the lifecycle, run inside the loop (its state is the loop's alone)."""

    call: Callable[[float], list[LifecycleCommand]]


@dataclass(frozen=True, slots=True)
class _Connected:
    session: ModelSession


@dataclass(frozen=True, slots=True)
class _Dropped:
    session: ModelSession
    reason: str


@dataclass(frozen=True, slots=True)
class _PersonaLoaded:
    """A persona the client picked, loaded off the loop with its last summary."""

    persona: Persona
    language: str
    summary: str | None


Item = e.Event | _LifeCall | _Connected | _Dropped | _PersonaLoaded | MicRun


class BridgeAdapter:
    """Everything the bridge does at run time; `BridgeService` feeds it the bus."""

    def __init__(
        self, nc: Client, subjects: Subjects, settings: BridgeSettings, persona: Persona, spawn: Spawn
    ) -> None:
        self.nc = nc
        self._spawn = spawn  # the service's: keeps the task, logs its failure, cancels it at stop
        self.subjects = subjects
        self.settings = settings
        self.persona = persona
        self.language = settings.language or persona.language_code
        try:
            self._zone: ZoneInfo | None = ZoneInfo(persona.timezone)
        except (KeyError, ValueError):
            log.warning("persona_timezone_unknown", timezone=persona.timezone)  # the machine's local day then
            self._zone = None
        self.endpoint = ModelEndpoint.from_settings(settings)
        self.core = TurnCoordinator(self._core_config(), id_prefix=f"t{now_us() % 1_000_000:06d}-")
        self.lifecycle = SessionLifecycle(
            LifecycleConfig(
                model=settings.realtime_model,
                transcription_model=settings.transcription_model,
                idle_limit_s=settings.idle_limit_s,
                offline_message=self.endpoint.offline_message,
                simulated=self.endpoint.simulated,
            ),
            Voice.of(persona, self.language),
            registry=ToolRegistry(persona=persona.name),
            meter=CostMeter(settings.pricing, settings.thresholds),
            # The local simulator's quick first retries, unless delays were configured.
            schedule=ReconnectSchedule.for_endpoint(
                settings.reconnect_delays_s,
                local=self.endpoint.simulated and "reconnect_delays_s" not in settings.model_fields_set,
            ),
        )
        # Not ready until bridge.rpc/inject are served and the model session is up: focus
        # fires injects only while we say ready (FOCUS-12).
        self.focus = FocusClient(nc, subjects, HOLDER, self, ready=False)
        self._rpc_served = False
        self._ready_lane = Lane("ready")  # set_ready renews: in order, never on the loop
        self.peers = BusRequests(nc, subjects, self.focus, self.put, spawn)
        self.storage = StorageLink(nc, subjects, persona.name)
        self.cue = CuePlayer(nc, subjects, self.focus)
        self.model: ModelSession | None = None
        self._queue: asyncio.Queue[Item] = asyncio.Queue()
        self._loop_task: asyncio.Task[None] | None = None
        self._connecting = False
        self._inject_waiters: dict[str, list[asyncio.Future[str]]] = {}
        self._ready_wanted = False
        self.publishing = PublishHealth()

    def _core_config(self) -> CoordinatorConfig:
        defaults = CoordinatorConfig()
        return replace(
            defaults,
            tool_timeout_s=self.settings.tool_timeout_s,
            too_short_message=self.persona.ui_string("too_short", self.language, defaults.too_short_message),
            offline_message=self.persona.ui_string("offline", self.language, defaults.offline_message),
        )

    # -- life ------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._ready_lane.start()
        self.peers.start()
        self.storage.start()
        await self.focus.start()
        self.lifecycle.summary = await self.storage.restore(self.lifecycle.meter)
        self._loop_task = asyncio.create_task(self._run(), name="bridge-loop")
        self.put(_LifeCall(lambda now: self.lifecycle.start(now, self.day())))
        # Every host answers with its manifest: the tools the session starts with.
        await self.nc.publish(
            self.subjects.skills_announce(), encode(sm.AnnounceRequest(reason="bridge_start"))
        )

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        await self._life(self.lifecycle.stop())  # summary stored, socket closed
        if self.model is not None:
            await self.model.close()
            self.model = None
        await self._ready_lane.stop()
        await self.storage.stop()  # drains its writes first (at most STORAGE_DEADLINE_S)
        await self.peers.stop()
        await self.focus.stop()  # gives DIALOG back if a turn still held it

    def day(self) -> str:
        """The persona's local date: the cost meter's day."""
        return datetime.now(self._zone).date().isoformat()

    def put(self, item: Item) -> None:
        self._queue.put_nowait(item)

    # -- the loop --------------------------------------------------------------------------------
    def _timeout(self) -> float | None:
        deadlines = [d for d in (self.core.next_deadline(), self.lifecycle.next_deadline()) if d is not None]
        return max(0.0, min(deadlines) - time.monotonic()) if deadlines else None

    async def _run(self) -> None:
        held: Item | None = None  # taken off the queue behind a run of mic frames
        while True:
            try:
                item = (
                    held if held is not None else await asyncio.wait_for(self._queue.get(), self._timeout())
                )
            except TimeoutError:
                item = e.Tick()
            held = None
            if isinstance(item, e.MicAudio):
                item, held = take_run(item, self._queue)
            try:
                await self._handle(item)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug must not take the voice down: log it and go on with the next input.
                log.exception("bridge_event_failed", item=type(item).__name__)

    def rpc_served(self) -> None:
        """bridge.rpc and bridge.inject answer now: a ready renew may go out (focus would fire at once)."""
        self._rpc_served = True
        self.put(e.Tick())  # the loop syncs readiness after every item

    def _sync_ready(self) -> None:
        """Tell focus whether an inject can be spoken now (a renew at once on a change)."""
        ready = self._rpc_served and self.model is not None and self.lifecycle.state == "connected"
        if ready != self._ready_wanted:
            self._ready_wanted = ready
            log.info("bridge_ready", ready=ready)
            self._ready_lane.put(partial(self.focus.set_ready, ready))

    async def _handle(self, item: Item) -> None:
        try:
            await self._handle_item(item)
        finally:
            self._sync_ready()

    async def _handle_item(self, item: Item) -> None:
        now = time.monotonic()
        match item:
            case _LifeCall(call=call):
                await self._life(call(now))
                return
            case _Connected(session=session):
                await self._connected(session, now)
                return
            case _PersonaLoaded():
                await self._adopt_persona(item)
                return
            case MicRun(frames=frames):
                await self._execute(joined_appends([x for f in frames for x in self.core.handle(f, now)]))
                return
            case _Dropped(session=session, reason=reason):
                if session is not self.model:
                    return  # an earlier socket's reader finishing late
                self.model = None
                await self._execute(self.core.handle(e.ModelDisconnected(reason), now))
                await self._life(self.lifecycle.dropped(now, reason))
                return
            case e.Tick():
                await self._life(self.lifecycle.tick(now, self.day(), busy=self.core.turn is not None))
            case e.ResponseDone(usage=usage) if usage:
                await self._life(self.lifecycle.usage(usage, self.day()))
                self.storage.save_cost(self.lifecycle.meter)
            case e.ModelError(message=message, code=code, event_id=event_id, kind=kind):
                log.warning("model_error", code=code, type=kind, event_id=event_id, error=message)
                await self._life(self.lifecycle.model_error(event_id, code, message))
            case e.PttStart() | e.RunInjectRequested() | e.CompletionRequested():
                self.lifecycle.activity(now)
            case _:
                pass
        await self._execute(self.core.handle(item, now))

    async def _connected(self, session: ModelSession, now: float) -> None:
        self._connecting = False
        if self.lifecycle.state != "connecting":  # stopped or over budget meanwhile
            await session.close()
            return
        self.model = session
        await self._life(self.lifecycle.connect_ok(now))  # session.update goes out first
        await self._execute(self.core.handle(e.ModelConnected(), now))
        self._spawn(self._read(session), "model-reader")
        self.storage.start_session()

    async def _read(self, session: ModelSession) -> None:
        reason = "socket closed"
        try:
            async for event in session.events():
                self.put(event)
        except Exception as exc:  # whatever ended the reader, the turn must not stay stuck
            reason = f"{type(exc).__name__}: {exc}"
        self.put(_Dropped(session, reason))

    async def _connect(self, attempt: int) -> None:
        try:
            session = ModelSession(self.endpoint)
            await session.connect()
        except ModelUnavailable as exc:
            message = str(exc)
            log.warning("model_connect_failed", attempt=attempt, error=message)
            self._connecting = False
            self.put(_LifeCall(lambda now: self.lifecycle.connect_failed(now, message)))
            return
        self.put(_Connected(session))

    # -- the lifecycle's commands ------------------------------------------------------------------
    async def _life(self, commands: list[LifecycleCommand]) -> None:
        for cmd in commands:
            match cmd:
                case Connect(attempt=attempt):
                    if not self._connecting:
                        self._connecting = True
                        self._spawn(self._connect(attempt), "model-connect")
                case Close(reason=reason):
                    log.info("model_closing", reason=reason)
                    if reason == "reset":  # the stored conversation ends too: the next one starts afresh
                        self.storage.fresh = True
                        self.storage.end_session(None, failure="session_not_ended")
                    if self.model is not None:
                        await self.model.close()  # the reader ends and reports the drop
                case StoreSummary(text=text):
                    self.storage.end_session(text)
                case PlayCue(attempt=attempt):
                    self._spawn(self.cue.play(), f"cue-{attempt}")
                case Announce(language=language):
                    message = sm.AnnounceRequest(reason="language", language=language)
                    await self.nc.publish(self.subjects.skills_announce(), encode(message))
                case ToolsUpdated(tools=tools):
                    await self._execute(self.core.handle(e.ToolsChanged(tools), time.monotonic()))
                case c.SendModel() | c.Publish():
                    await self._execute([cmd])

    # -- the coordinator's commands ------------------------------------------------------------------
    async def _execute(self, commands: list[c.Command]) -> None:
        for cmd in commands:
            match cmd:
                case c.SendModel(event=event):
                    if self.model is not None:
                        await self.model.send(event)
                case c.AppendAudio(pcm=pcm):
                    if self.model is not None:
                        await self.model.append_audio(pcm)
                case c.PublishAudio(stream_id=stream, seq=seq, pcm=pcm, eos=eos):
                    frame = AudioFrame(stream, seq, now_us(), pcm, eos)
                    await self.nc.publish(
                        self.subjects.audio_out_of(BRIDGE_HOLDER, stream), encode_frame(frame)
                    )
                case c.Publish(kind=kind, message=message):
                    await self._publish(kind, message)
                case c.InjectReply(inject_id=inject_id, status=status):
                    for waiter in self._inject_waiters.pop(inject_id, []):
                        if not waiter.done():
                            waiter.set_result(status)
                case _:  # a request to a peer: its reply comes back as an event
                    self.peers.run(cmd)

    async def _publish(self, kind: str, message: Any) -> None:
        if isinstance(message, TranscriptEvent):  # what was heard: the summary's and storage's line
            self.lifecycle.heard(message.role, message.text)
            self.storage.record(message.role, message.text, message.turn_id)
        try:
            await self.nc.publish(self.subjects.bridge_event(kind), encode(message))
        except Exception as exc:  # the turn goes on; health says the house can't hear about it
            self.publishing.failed(time.monotonic(), kind, f"{type(exc).__name__}: {exc}")
            log.warning("bridge_event_not_published", kind=kind, error=str(exc))
        else:
            self.publishing.published(time.monotonic())

    def problems(self) -> list[str]:
        """Why the bridge can't do its whole job right now (health: degraded)."""
        found = [self.lifecycle.rejected, self.publishing.problem(time.monotonic())]
        return [p for p in found if p]

    # -- what the bus brings (called by BridgeService) ----------------------------------------------------
    async def run_inject(
        self, inject_id: str, prompt: str, activity_id: str, priority: Any
    ) -> InjectAccepted:
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._inject_waiters.setdefault(inject_id, []).append(waiter)
        self.put(e.RunInjectRequested(inject_id, prompt, activity_id, priority))
        try:
            status = await asyncio.wait_for(waiter, INJECT_REPLY_TIMEOUT_S)
        except TimeoutError:
            raise WireError(ErrorCode.TIMEOUT, f"run_inject {inject_id} was not taken in time") from None
        if status == "unavailable":  # focus re-queues it and waits for our next ready renew
            log.info("run_inject_unavailable", inject=inject_id)
            raise WireError(ErrorCode.UNAVAILABLE, "the model session is not up; the inject was not taken")
        return InjectAccepted(inject_id=inject_id, status=status)  # type: ignore[arg-type]

    def snapshot(self) -> BridgeSnapshot:
        core = self.core.snapshot()
        return BridgeSnapshot(
            state=self.lifecycle.public_state,
            connected=self.model is not None,
            offline=self.lifecycle.offline,
            simulated=self.endpoint.simulated,
            turn_id=core["turn_id"],
            turn_kind=core["turn_kind"],
            phase=core["phase"],
            tools=core["tools"],
            model=self.settings.realtime_model,
            cost_usd_today=round(self.lifecycle.meter.usd, 4),
        )

    def on_ptt(self, event: am.PttEvent) -> None:
        if event.action == "start":
            self.put(e.PttStart(event.press_id, event.ts_us))
        else:
            self.put(e.PttStop(event.press_id, event.ts_us, event.frames))

    def on_played(self, event: am.PlayedEvent) -> None:
        if self.cue.took_played(event):
            return
        self.put(e.Played(event.stream_id, event.played_ms, event.drained))

    def on_control(self, event: am.ClientControl) -> None:
        if event.action == "reset":
            self.put(_LifeCall(lambda now: self.lifecycle.reset()))
        elif event.action == "set_language":
            self.put(_LifeCall(lambda now: self._set_language(event.language)))
        elif event.action == "set_persona":
            self._spawn(self._load_persona(event.persona or "", event.language), "persona-load")
        else:  # wake_word: a session waiting out its backoff tries again at once
            log.info("client_control", action=event.action, client=event.client_id)
            self.put(_LifeCall(self.lifecycle.wake))

    def _set_language(self, language: str | None) -> list[LifecycleCommand]:
        self.language = language if language in self.persona.languages else self.persona.language_code
        self.core.config = self._core_config()
        return self.lifecycle.set_language(Voice.of(self.persona, self.language), self.language)

    # -- set_persona: a fresh session for the persona the client picked ---------------------------
    async def _load_persona(self, name: str, language: str | None) -> None:
        if name == self.persona.name:
            return
        try:
            persona = load_persona(name, self.settings.personas_dir)
        except (PersonaError, OSError) as exc:
            log.warning("persona_switch_refused", persona=name, error=str(exc))
            why = f"Can't switch to persona {name!r}: {exc}. Staying on {self.persona.name!r}."
            self.put(_LifeCall(lambda now: [c.Publish("status", StatusEvent(message=why))]))
            return
        summary = await self.storage.summary_of(persona.name)
        chosen = language if language in persona.languages else persona.language_code
        self.put(_PersonaLoaded(persona, chosen, summary))

    async def _adopt_persona(self, item: _PersonaLoaded) -> None:
        persona = item.persona
        log.info("persona_switch", persona=persona.name, previous=self.persona.name)
        self.persona, self.language = persona, item.language
        self.core.config = self._core_config()
        await self._life(self.lifecycle.switch_persona(Voice.of(persona, self.language), item.summary))
        self.storage.end_session(None, failure="session_not_ended")  # a no-op if its summary ended it
        self.storage.switch(persona.name)  # in the storage lane: after the ending session's writes
        if self.lifecycle.registry.switch(persona.name):
            await self._life([ToolsUpdated(self.lifecycle.registry.tools())])
        await self._life([Announce(self.language)])  # hosts re-send their manifests (in this language)
        missing = [skill for skill in persona.skills if skill not in self.lifecycle.registry.served()]
        message = f"Switched to persona {persona.name!r}."
        if missing:
            message += (
                f" Its skills {', '.join(missing)} are not served on this site"
                f" (no skill-host runs persona {persona.name!r}): the voice has no such tools."
            )
        await self._publish("status", StatusEvent(message=message))

    def on_manifest(self, manifest: sm.Manifest) -> None:
        self.put(_LifeCall(lambda now: self.lifecycle.manifest(manifest, now)))

    # -- FocusHandler: what focus tells the holder `bridge` ---------------------------------------------
    async def on_focus(self, change: FocusChange) -> None:
        if self.cue.took_focus(change):
            return
        if change.state is not FocusState.NONE:
            return  # the turns act only on losing an activity (a grant comes with its turn)
        self.put(
            e.ActivityChanged(
                change.activity_id,
                change.channel,
                change.state,
                HOLDER,
                change.meta.kind,
                change.reason,
            )
        )

    async def on_patience_expired(self, activity_id: str) -> None:
        pass  # the bridge's DIALOG activities have no patience

    async def on_effect_dropped(self, effect_id: str, reason: str) -> None:
        pass  # effects belong to skill-hosts
