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
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine
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
from huxley_bridge.cue import reconnect_cue
from huxley_bridge.instructions import Voice
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
from huxley_bridge.model import ModelEndpoint, ModelSession, ModelUnavailable
from huxley_bridge.reconnect import ReconnectSchedule
from huxley_bridge.settings import BridgeSettings
from huxley_runtime.focus_client import FocusClient
from huxley_runtime.logging import get_logger
from huxley_runtime.persona import Persona
from huxley_runtime.rpc import request, request_with_retry
from huxley_runtime.storage_client import SessionsClient, SettingsClient
from huxley_wire.audio import AudioFrame, encode_frame, frames_of, now_us
from huxley_wire.codec import encode
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages import audio as am
from huxley_wire.messages import skills as sm
from huxley_wire.messages.bridge import BridgeSnapshot, InjectAccepted
from huxley_wire.messages.focus import ActivityKind, ActivityMeta, Channel, FocusChange, FocusState
from huxley_wire.subjects import InvalidToken, Subjects

log = get_logger(component="adapter")

COST_KEY = "cost_today"  # {"day": ..., "usd": ...} under the bridge's own storage namespace
STORAGE_NAMESPACE = "realtime-bridge"
INJECT_REPLY_TIMEOUT_S = 5.0
CUE_DRAIN_TIMEOUT_S = 3.0
STORAGE_DEADLINE_S = 5.0  # storage down: give up on a write after this (the turn goes on)


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


Item = e.Event | _LifeCall | _Connected | _Dropped
Spawn = Callable[[Coroutine[Any, Any, Any], str], object]


class _Lane:
    """Runs coroutines one after the other, in the order they were queued."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._work(), name=f"lane-{self.name}")

    def put(self, job: Callable[[], Awaitable[None]]) -> None:
        self._queue.put_nowait(job)

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("lane_job_failed", lane=self.name)
            finally:
                self._queue.task_done()

    async def drain(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


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
            ),
            Voice.of(persona, self.language),
            meter=CostMeter(settings.pricing, settings.thresholds),
            schedule=ReconnectSchedule(delays_s=settings.reconnect_delays_s),
        )
        self.focus = FocusClient(nc, subjects, HOLDER, self)
        self.sessions = SessionsClient(nc, subjects, persona.name, deadline_s=STORAGE_DEADLINE_S)
        self.cost_store = SettingsClient(
            nc, subjects, persona.name, STORAGE_NAMESPACE, deadline_s=STORAGE_DEADLINE_S
        )
        self.model: ModelSession | None = None
        self.storage_session: int | None = None
        self._fresh_session = False  # the next stored session must not resume the last (a reset)
        self._queue: asyncio.Queue[Item] = asyncio.Queue()
        self._focus_lane = _Lane("focus")
        self._audio_lane = _Lane("audio")
        self._storage_lane = _Lane("storage")
        self._loop_task: asyncio.Task[None] | None = None
        self._connecting = False
        self._inject_waiters: dict[str, list[asyncio.Future[str]]] = {}
        self._drained: dict[str, asyncio.Future[None]] = {}  # cue streams waiting for `drained`
        self._cue_activities: set[str] = set()

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
        for lane in (self._focus_lane, self._audio_lane, self._storage_lane):
            lane.start()
        await self.focus.start()
        await self._restore()
        self._loop_task = asyncio.create_task(self._run(), name="bridge-loop")
        self.put(_LifeCall(lambda now: self.lifecycle.start(now, self.day())))
        # Every host answers with its manifest: the tools the session starts with.
        await self.nc.publish(
            self.subjects.skills_announce(), encode(sm.AnnounceRequest(reason="bridge_start"))
        )

    async def _restore(self) -> None:
        """The last session's summary and today's spend, if storage answers."""
        try:
            self.lifecycle.summary = await self.sessions.latest_summary()
        except WireError as exc:
            log.warning("summary_not_restored", code=str(exc.code), error=exc.message)
        try:
            raw = await self.cost_store.get_setting(COST_KEY)
            if raw:
                saved = json.loads(raw)
                self.lifecycle.meter.restore(str(saved["day"]), float(saved["usd"]))
        except WireError as exc:
            log.warning("cost_not_restored", code=str(exc.code), error=exc.message)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("cost_unreadable", error=str(exc))

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        await self._life(self.lifecycle.stop())  # summary stored, socket closed
        if self.model is not None:
            await self.model.close()
            self.model = None
        await self._storage_lane.drain(STORAGE_DEADLINE_S)
        for lane in (self._focus_lane, self._audio_lane, self._storage_lane):
            await lane.stop()
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
        while True:
            try:
                item: Item = await asyncio.wait_for(self._queue.get(), self._timeout())
            except TimeoutError:
                item = e.Tick()
            try:
                await self._handle(item)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug must not take the voice down: log it and go on with the next input.
                log.exception("bridge_event_failed", item=type(item).__name__)

    async def _handle(self, item: Item) -> None:
        now = time.monotonic()
        match item:
            case _LifeCall(call=call):
                await self._life(call(now))
                return
            case _Connected(session=session):
                await self._connected(session, now)
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
                self._save_cost()
            case e.UserTranscript(text=text) | e.AssistantTranscript(text=text):
                role = "user" if isinstance(item, e.UserTranscript) else "assistant"
                self.lifecycle.heard(role, text)
                self._record(role, text)
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
        self._store("session_not_stored", self._start_storage_session)

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
                        self._fresh_session = True
                        self._store("session_not_ended", partial(self._end_storage_session, None))
                    if self.model is not None:
                        await self.model.close()  # the reader ends and reports the drop
                case StoreSummary(text=text):
                    self._store("summary_not_stored", partial(self._end_storage_session, text))
                case PlayCue(attempt=attempt):
                    self._spawn(self._play_cue(), f"cue-{attempt}")
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
                    await self.nc.publish(self.subjects.audio_out(stream), encode_frame(frame))
                case c.Publish(kind=kind, message=message):
                    await self.nc.publish(self.subjects.bridge_event(kind), encode(message))
                case c.InjectReply(inject_id=inject_id, status=status):
                    for waiter in self._inject_waiters.pop(inject_id, []):
                        if not waiter.done():
                            waiter.set_result(status)
                case c.Interrupt() | c.AcquireDialog() | c.ReleaseActivity() | c.EndTurn() | c.StopChannel():
                    self._focus_lane.put(partial(self._focus_request, cmd))
                case c.ClearAudio() | c.SetVolume():
                    self._audio_lane.put(partial(self._audio_request, cmd))
                case c.CallTool():
                    self._spawn(self._call_tool(cmd), f"tool-{cmd.call_id}")
                case c.DiscardEffect():
                    self._spawn(self._discard(cmd), f"discard-{cmd.effect_id}")

    async def _focus_request(self, cmd: c.Command) -> None:
        match cmd:
            case c.Interrupt(token=token, claim_grace_ms=grace):
                try:
                    done = await self.focus.interrupt(claim_grace_ms=grace)
                except WireError as exc:
                    self.put(e.InterruptFailed(token, exc.message))
                else:
                    self.put(e.InterruptDone(token, done.ended_claim, done.claim_age_ms, done.ignored))
            case c.AcquireDialog(turn_id=turn_id, interface=interface, meta=meta):
                try:
                    granted = await self.focus.acquire(Channel.DIALOG, interface, meta=meta)
                except WireError as exc:
                    self.put(e.DialogAcquireFailed(turn_id, exc.message))
                else:
                    self.put(e.DialogAcquired(turn_id, granted.activity_id))
            case c.ReleaseActivity(activity_id=activity_id):
                with contextlib.suppress(WireError):
                    await self.focus.release(activity_id)
            case c.EndTurn(turn_id=turn_id, activity_id=activity_id, inject_id=inject_id, pending=pending):
                try:
                    ended = await self.focus.turn_end(activity_id, inject_id=inject_id, pending=pending)
                except WireError as exc:
                    log.warning("turn_end_failed", turn=turn_id, code=str(exc.code), error=exc.message)
                    self.put(e.TurnEndDone(turn_id, ok=False))
                else:
                    self.put(e.TurnEndDone(turn_id, ended.outcome))
            case c.StopChannel(channel=channel):
                try:
                    await self.focus.stop_channel(channel)
                except WireError as exc:
                    log.warning("stop_channel_failed", channel=str(channel), error=exc.message)

    async def _audio_request(self, cmd: c.Command) -> None:
        subject = self.subjects.audio_rpc()
        match cmd:
            case c.ClearAudio(token=token, stream_id=stream_id):
                try:
                    cleared = await request(self.nc, subject, am.Clear(stream_id=stream_id))
                except WireError as exc:
                    # The turn goes on: nothing was cleared, so nothing is known to be unheard.
                    log.warning("audio_clear_failed", code=str(exc.code), error=exc.message)
                    self.put(e.AudioCleared(token, ok=False))
                else:
                    self.put(e.AudioCleared(token, True, cleared.played))
            case c.SetVolume(level=level):
                try:
                    await request(self.nc, subject, am.SetVolume(level=level))
                except WireError as exc:
                    log.warning("set_volume_failed", level=level, error=exc.message)

    async def _call_tool(self, cmd: c.CallTool) -> None:
        call = sm.ToolCall(call_id=cmd.call_id, tool=cmd.tool, args=cmd.args, turn_id=cmd.turn_id)
        try:
            subject = self.subjects.skill_tool(cmd.skill)
            reply = await request(self.nc, subject, call, timeout=cmd.timeout_s)
        except InvalidToken as exc:
            self.put(e.ToolFailed(cmd.call_id, str(ErrorCode.UNAVAILABLE), str(exc)))
        except WireError as exc:
            self.put(e.ToolFailed(cmd.call_id, str(exc.code), exc.message))
        else:
            self.put(e.ToolDone(cmd.call_id, reply))

    async def _discard(self, cmd: c.DiscardEffect) -> None:
        message = sm.DiscardEffect(effect_id=cmd.effect_id, reason=cmd.reason)
        try:
            subject = self.subjects.skill_host_rpc(cmd.host)
            await request_with_retry(self.nc, subject, message, deadline_s=5.0)
        except (WireError, InvalidToken) as exc:
            # The host is gone (its effects with it) or already forgot the effect.
            log.info("discard_not_delivered", host=cmd.host, effect=cmd.effect_id, error=str(exc))

    # -- storage -----------------------------------------------------------------------------------
    def _store(self, failure: str, write: Callable[[], Awaitable[object]]) -> None:
        """A storage write, in order behind the others. Storage failing is a
        warning named `failure`: the conversation goes on without it."""

        async def job() -> None:
            try:
                await write()
            except WireError as exc:
                log.warning(failure, code=str(exc.code), error=exc.message)

        self._storage_lane.put(job)

    async def _start_storage_session(self) -> None:
        fresh, self._fresh_session = self._fresh_session, False
        self.storage_session = (await self.sessions.start(fresh=fresh)).session_id

    def _record(self, role: str, text: str) -> None:
        turn_id = self.core.turn.id if self.core.turn is not None else None
        record_id = secrets.token_hex(12)  # one id per line: storage keeps a retried line once

        async def write() -> None:
            if self.storage_session is not None and text:
                await self.sessions.record_turn(self.storage_session, role, text, turn_id, record_id)  # type: ignore[arg-type]

        self._store("transcript_not_stored", write)

    async def _end_storage_session(self, summary: str | None) -> None:
        session_id, self.storage_session = self.storage_session, None
        if session_id is not None:
            await self.sessions.end(session_id, summary)

    def _save_cost(self) -> None:
        meter = self.lifecycle.meter
        value = json.dumps({"day": meter.day, "usd": round(meter.usd, 6)})
        self._store("cost_not_stored", partial(self.cost_store.set_setting, COST_KEY, value))

    # -- the reconnect cue -----------------------------------------------------------------------------
    async def _play_cue(self) -> None:
        """A short DIALOG activity of its own: the cue plays over (ducked) content."""
        meta = ActivityMeta(kind=ActivityKind.OTHER, label="reconnect-cue")
        try:
            granted = await self.focus.acquire(Channel.DIALOG, "reconnect-cue", meta=meta)
        except WireError as exc:
            log.info("cue_not_played", error=exc.message)
            return
        stream = granted.activity_id
        self._cue_activities.add(stream)
        drained: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._drained[stream] = drained
        try:
            frames = frames_of(reconnect_cue())
            for seq, pcm in enumerate(frames):
                frame = AudioFrame(stream, seq, now_us(), pcm, seq == len(frames) - 1)
                await self.nc.publish(self.subjects.audio_out(stream), encode_frame(frame))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(drained, CUE_DRAIN_TIMEOUT_S)
        finally:
            self._drained.pop(stream, None)
            with contextlib.suppress(WireError):
                await self.focus.release(stream)
            self._cue_activities.discard(stream)

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
        return InjectAccepted(inject_id=inject_id, status=status)  # type: ignore[arg-type]

    def snapshot(self) -> BridgeSnapshot:
        core = self.core.snapshot()
        return BridgeSnapshot(
            state=self.lifecycle.public_state,
            connected=self.model is not None,
            offline=self.lifecycle.state == "offline",
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
        waiter = self._drained.get(event.stream_id)
        if waiter is not None:
            if event.drained and not waiter.done():
                waiter.set_result(None)
            return
        self.put(e.Played(event.stream_id, event.played_ms, event.drained))

    def on_control(self, event: am.ClientControl) -> None:
        if event.action == "reset":
            self.put(_LifeCall(lambda now: self.lifecycle.reset()))
        elif event.action == "set_language":
            self.put(_LifeCall(lambda now: self._set_language(event.language)))
        else:  # wake_word: a session waiting out its backoff tries again at once
            log.info("client_control", action=event.action, client=event.client_id)
            self.put(_LifeCall(self.lifecycle.wake))

    def _set_language(self, language: str | None) -> list[LifecycleCommand]:
        self.language = language if language in self.persona.languages else self.persona.language_code
        self.core.config = self._core_config()
        return self.lifecycle.set_language(Voice.of(self.persona, self.language), self.language)

    def on_manifest(self, manifest: sm.Manifest) -> None:
        self.put(_LifeCall(lambda now: self.lifecycle.manifest(manifest, now)))

    # -- FocusHandler: what focus tells the holder `bridge` ---------------------------------------------
    async def on_focus(self, change: FocusChange) -> None:
        if change.activity_id in self._cue_activities:
            waiter = self._drained.get(change.activity_id)
            if change.state is FocusState.NONE and waiter is not None and not waiter.done():
                waiter.set_result(None)  # the cue was stopped (a PTT): don't wait for it
            return
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
