"""The skill-host: runs skills and connects them to the bus.

- Loads the skills named by `--skills` / HUXLEY_SKILLS, or the persona's
  `skills:`, from the `huxley.skills` entry points; a skill that fails to
  load, declares a tool another skill already declared, or whose setup
  raises is isolated (status `failed`) and the others go on.
- Serves each skill's tools on skills.tool.<skill> (queue group per skill);
  a hung tool times out, a raising tool becomes `tool_failed`.
- Announces every skill's manifest on skills.manifest (at start, on
  skills.announce, periodically, `bye` on a clean stop).
- Gives each skill a SkillContext over the bus (storage, injects through
  focus, client events...) and plays the streams and claims its tools
  returned once focus grants them (focus.notify.<host>).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from huxley_runtime.focus_client import FocusClient
from huxley_runtime.logging import bound
from huxley_runtime.persona import Persona, load_persona
from huxley_runtime.rpc import RETRYABLE, request_with_retry
from huxley_runtime.service import Endpoint, Service
from huxley_runtime.settings import HuxleySettings
from huxley_runtime.storage_client import SchemaClient, SettingsClient
from huxley_sdk import (
    AudioStream,
    CancelMedia,
    ClaimBusyError,
    ClaimEndReason,
    ClaimHandle,
    InputClaim,
    PlaySound,
    SetVolume,
    SideEffect,
    SkillContext,
    ToolResult,
)
from huxley_sdk.context import ClientEventHandler
from huxley_skill_host.claims import ClaimSession, MicTap, claim_end_reason
from huxley_skill_host.held import HeldEffect, HeldEffects
from huxley_skill_host.injector import Injector, InjectWatch
from huxley_skill_host.loader import SkillLoadError, ToolOwners, installed, load_skill, read_tools
from huxley_skill_host.secret_file import FileSecrets
from huxley_skill_host.settings import SkillHostSettings
from huxley_skill_host.skill_logger import BusSkillLogger
from huxley_skill_host.slot import SkillSlot
from huxley_skill_host.streams import StreamPlayer
from huxley_skill_host.supervisor import TaskSupervisor
from huxley_wire.audio import AudioFrame, decode_frame, encode_frame
from huxley_wire.codec import Ok, decode, encode
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages import focus as f
from huxley_wire.messages.audio import PlayedEvent
from huxley_wire.messages.bridge import Completion, SessionEvent
from huxley_wire.messages.skills import (
    AnnounceRequest,
    AudioStreamEffect,
    CancelMediaEffect,
    ClientEvent,
    DiscardEffect,
    InputClaimEffect,
    Manifest,
    PlaySoundEffect,
    ServerEvent,
    SetVolumeEffect,
    SideEffectWire,
    ToolCall,
    ToolReply,
)

# How long a focus notification for an activity we don't know yet is kept
# (the reply to our own acquire may be processed after it).
EARLY_NOTICE_S = 5.0
SETUP_RETRY_S = (1.0, 2.0, 5.0, 10.0, 30.0)
RECORD_SCHEMA_FOR_S = 3600.0


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class SkillHostService(Service):
    name = "skill-host"
    description = "Runs Huxley skills and serves their tools"
    settings_class = SkillHostSettings
    settings: SkillHostSettings

    def __init__(self, settings: HuxleySettings | None = None) -> None:
        if settings is not None and not isinstance(settings, SkillHostSettings):
            settings = SkillHostSettings.model_construct(**dict(settings))
        super().__init__(settings)
        self.persona: Persona | None = None
        self.language = "en"
        self.data_dir = Path(".")
        self.slots: dict[str, SkillSlot] = {}
        self.held = HeldEffects(self.settings.held_effect_ttl_s)
        self.players: dict[str, StreamPlayer] = {}
        self.claims: dict[str, ClaimSession] = {}  # by activity id
        self.live_claims: set[ClaimSession] = set()
        self.watch = InjectWatch()
        self._early: dict[str, tuple[float, f.FocusChange]] = {}
        self._finished: deque[str] = deque(maxlen=256)
        self._drained: dict[str, asyncio.Future[None]] = {}
        self._client_handlers: dict[str, list[tuple[str, ClientEventHandler]]] = {}
        self._subscriptions: list[Subscription] = []
        self._work: set[asyncio.Task[Any]] = set()
        self._graceful: set[asyncio.Task[Any]] = set()
        self._reconfiguring = asyncio.Lock()
        self._focus: FocusClient | None = None

    @property
    def focus(self) -> FocusClient:
        if self._focus is None:
            raise RuntimeError("skill-host: not started")
        return self._focus

    # -- lifecycle ---------------------------------------------------------------------------
    async def on_start(self) -> None:
        self.persona = load_persona(self.settings.persona, self.settings.personas_dir)
        self.language = self.persona.language_code
        self.data_dir = self.persona.data_dir(self.settings.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # The holder id is our instance id: focus.notify.<instance> (served by
        # the client, which also keeps our lease) tells us what to play.
        self._focus = FocusClient(
            self.nc,
            self.subjects,
            self.instance,
            self,
            patience_hook_timeout_s=self.settings.patience_hook_timeout_s,
        )
        await self._focus.start()
        self._load_skills(self.settings.skill_list() or list(self.persona.skills))
        subjects = self.subjects
        for subject, handler in (
            (subjects.focus_event("inject"), self._on_inject_event),
            (subjects.client_events(), self._on_client_event),
            (subjects.bridge_event("session"), self._on_session_event),
            (subjects.skills_announce(), self._on_announce),
            (subjects.audio_played(), self._on_played),
        ):
            self._subscriptions.append(await self.nc.subscribe(subject, cb=self._guarded(handler)))
        for slot in self.slots.values():
            if slot.skill is not None:
                self._start_work(self._bring_up(slot), name=f"setup:{slot.name}")
        self.spawn(self._announce_periodically(), name="announce")
        self.spawn(self._expire_periodically(), name="expire")

    def endpoints(self) -> list[Endpoint]:
        return [Endpoint("host", self.subjects.skill_host_rpc(self.instance), {DiscardEffect: self._discard})]

    async def on_stop(self) -> None:
        with contextlib.suppress(Exception):
            await self._publish_manifest(bye=True)
        for player in self.players.values():
            player.set_want("stop")
        for session in list(self.live_claims):
            await session.end(ClaimEndReason.ERROR, release=True)
        for held in self.held.drain():
            await self._drop_held(held, "error")
        await self._settle_work(self.settings.teardown_timeout_s)
        if self._focus is not None:
            await self._focus.stop(release=True)  # gives back the streams we stopped
        for slot in self.slots.values():
            await self._tear_down(slot)
        for sub in self._subscriptions:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    def health(self) -> tuple[str, dict[str, Any]]:
        statuses = {slot.status for slot in self.slots.values()}
        focus_ok = self._focus is not None and self._focus.lease_ok
        if statuses & {"failed", "degraded", "waiting"} or not focus_ok:
            status = "degraded"
        elif "starting" in statuses:
            status = "starting"
        else:
            status = "ok"
        focus = "ok" if focus_ok else "unreachable"
        return status, {
            "persona": self.persona.name if self.persona else None,
            "language": self.language,
            "skills": {name: slot.health() for name, slot in self.slots.items()},
            "focus": focus,
            "streams": len(self.players),
            "claims": len(self.live_claims),
            "held_effects": len(self.held),
        }

    # -- loading and setting up ---------------------------------------------------------------------
    def _load_skills(self, names: list[str]) -> None:
        available = installed()
        owners = ToolOwners()
        for name in names:
            slot = self.slots.setdefault(name, SkillSlot(name))
            try:
                self.subjects.skill_tool(name)  # the name must be a subject token
                skill = load_skill(name, available)
                owners.claim(name, read_tools(skill))
            except (SkillLoadError, ValueError) as exc:
                slot.fail(str(exc))
                self.log.error("skill_refused", skill=name, error=str(exc))
                continue
            slot.skill = skill

    def _context(self, slot: SkillSlot) -> SkillContext:
        assert self.persona is not None
        name = slot.name
        logger = BusSkillLogger(name)
        slot.supervisor = TaskSupervisor(logger, on_gave_up=lambda failure: self._task_gave_up(slot, failure))
        injector = Injector(
            name, self._send_inject, self.watch, wait_timeout_s=self.settings.inject_wait_timeout_s
        )

        async def start_input_claim(claim: InputClaim, /) -> ClaimHandle:
            return await self._start_input_claim(name, claim)

        async def cancel_active_claim(*, reason: ClaimEndReason = ClaimEndReason.NATURAL) -> bool:
            return await self._cancel_active_claim(name, reason)

        def subscribe_client_event(key: str, handler: ClientEventHandler, /) -> None:
            self._client_handlers.setdefault(key, []).append((name, handler))

        async def emit_server_event(event: str, data: dict[str, Any] | None = None, /) -> None:
            message = ServerEvent(event=event, data=dict(data or {}), skill=name)
            await self.nc.publish(self.subjects.server_event(), encode(message))

        return SkillContext(
            logger=logger,
            storage=SettingsClient(
                self.nc, self.subjects, self.persona.name, name, deadline_s=self.settings.storage_retry_s
            ),
            secrets=FileSecrets.for_skill(self.data_dir, name),
            persona_data_dir=self.data_dir,
            config=self.persona.skill_config(name, self.language),
            language=self.language,
            inject_turn=injector.inject_turn,
            inject_turn_and_wait=injector.inject_turn_and_wait,
            background_task=slot.supervisor.start,
            start_input_claim=start_input_claim,
            cancel_active_claim=cancel_active_claim,
            subscribe_client_event=subscribe_client_event,
            emit_server_event=emit_server_event,
        )

    async def _bring_up(self, slot: SkillSlot) -> None:
        """Schema check, setup (retried while a peer it needs is down), then
        serve the tools and record the schema version."""
        assert slot.skill is not None and self.persona is not None
        skill = slot.skill
        current = int(getattr(skill, "data_schema_version", 1) or 1)
        checked = await self._check_schema(slot, current, wait_s=self.settings.schema_wait_s)
        setup = getattr(skill, "setup", None)
        attempt = 0
        while True:
            ctx = self._context(slot)
            slot.ctx = ctx
            slot.error = None  # from here on, an error is this attempt's (a background task's)
            try:
                if callable(setup):
                    await asyncio.wait_for(setup(ctx), self.settings.setup_timeout_s)
                break
            except TimeoutError:
                await self._abandon(slot, f"setup did not finish within {self.settings.setup_timeout_s:g} s")
                return
            except WireError as exc:
                if exc.code not in RETRYABLE:
                    await self._abandon(slot, f"setup raised {_describe(exc)}", exc)
                    return
                delay = SETUP_RETRY_S[min(attempt, len(SETUP_RETRY_S) - 1)]
                attempt += 1
                slot.status, slot.error = (
                    "waiting",
                    f"setup needs a peer that is down ({exc.message}); retrying",
                )
                self.log.warning("skill_setup_waiting", skill=slot.name, error=exc.message, retry_in_s=delay)
                await self._undo_setup(slot)
                await asyncio.sleep(delay)
            except Exception as exc:
                await self._abandon(slot, f"setup raised {_describe(exc)}", exc)
                return
        # Say "ok" only once the tool subject is live: health and status must not
        # promise a skill nobody answers for yet. A background task that failed
        # meanwhile left its error: then the skill serves, degraded.
        await self.serve(
            Endpoint(
                f"tool-{slot.name}",
                self.subjects.skill_tool(slot.name),
                {ToolCall: lambda call, subject: self._call_tool(slot, call)},
                concurrent=True,
                queue_group=f"skill.{slot.name}",
            )
        )
        slot.status = "degraded" if slot.error else "ok"
        self.log.info("skill_ready", skill=slot.name, tools=slot.tool_names())
        await self._publish_manifest()
        await self._record_schema(slot, current, checked=checked)

    async def _check_schema(self, slot: SkillSlot, current: int, *, wait_s: float) -> bool:
        """Compare the recorded data schema version with the skill's (a warning
        on mismatch, as the reference does); False when storage did not answer
        within `wait_s`, so the check runs again after setup."""
        assert self.persona is not None
        schema = SchemaClient(self.nc, self.subjects, self.persona.name, slot.name, deadline_s=wait_s)
        try:
            stored = await schema.get_version()
        except WireError as exc:
            self.log.warning("skill_schema_check_deferred", skill=slot.name, error=exc.message)
            return False
        if stored is not None and stored < current:
            self.log.warning("skill.schema.upgrade_needed", skill=slot.name, stored=stored, current=current)
        elif stored is not None and stored > current:
            self.log.warning(
                "skill.schema.downgrade_detected", skill=slot.name, stored=stored, current=current
            )
        return True

    async def _record_schema(self, slot: SkillSlot, current: int, *, checked: bool) -> None:
        """After a successful setup: the deferred check if storage was down
        before, then record the version (both retried until storage answers)."""
        assert self.persona is not None
        if not checked:
            await self._check_schema(slot, current, wait_s=RECORD_SCHEMA_FOR_S)
        schema = SchemaClient(
            self.nc, self.subjects, self.persona.name, slot.name, deadline_s=RECORD_SCHEMA_FOR_S
        )
        try:
            await schema.set_version(current)
        except WireError as exc:
            self.log.warning("skill_schema_not_recorded", skill=slot.name, error=exc.message)

    async def _abandon(self, slot: SkillSlot, error: str, exc: BaseException | None = None) -> None:
        slot.fail(error)
        self.log.error("skill_setup_failed", skill=slot.name, error=error, exc_info=exc)
        await self._undo_setup(slot)
        await self._publish_manifest()

    async def _undo_setup(self, slot: SkillSlot) -> None:
        """Forget what a failed setup registered: its tasks and client handlers."""
        if slot.supervisor is not None:
            await slot.supervisor.stop()
        for key, handlers in list(self._client_handlers.items()):
            self._client_handlers[key] = [(owner, h) for owner, h in handlers if owner != slot.name]

    async def _tear_down(self, slot: SkillSlot) -> None:
        teardown = getattr(slot.skill, "teardown", None)
        if slot.serving and callable(teardown):
            try:
                await asyncio.wait_for(teardown(), self.settings.teardown_timeout_s)
            except Exception as exc:
                self.log.warning("skill_teardown_failed", skill=slot.name, error=_describe(exc))
        await self._undo_setup(slot)

    def _task_gave_up(self, slot: SkillSlot, failure: Any) -> None:
        slot.degrade(
            f"background task {failure.name!r} failed for good after {failure.restart_count} crashes "
            f"({failure.last_exception_class}: {failure.last_exception_message})"
        )
        self._start_work(self._publish_manifest(), name="manifest")

    async def _reconfigure_all(self, language: str) -> None:
        assert self.persona is not None
        async with self._reconfiguring:
            self.language = language
            for slot in self.slots.values():
                if not slot.serving or slot.ctx is None:
                    continue
                slot.ctx = dataclasses.replace(
                    slot.ctx, language=language, config=self.persona.skill_config(slot.name, language)
                )
                reconfigure = getattr(slot.skill, "reconfigure", None)
                if not callable(reconfigure):
                    continue
                try:
                    await asyncio.wait_for(reconfigure(slot.ctx), self.settings.setup_timeout_s)
                except Exception as exc:
                    slot.degrade(f"reconfigure raised {_describe(exc)}")
                    self.log.error("skill_reconfigure_failed", skill=slot.name, error=_describe(exc))

    # -- tools ---------------------------------------------------------------------------------
    async def _call_tool(self, slot: SkillSlot, call: ToolCall) -> ToolReply:
        if not slot.serving or slot.skill is None:
            raise WireError(ErrorCode.UNAVAILABLE, f"skill {slot.name!r} is {slot.status}: {slot.error}")
        tools = slot.tool_names()
        if call.tool not in tools:
            raise WireError(
                ErrorCode.UNKNOWN_TOOL,
                f"skill {slot.name!r} has no tool {call.tool!r} (its tools: {', '.join(tools) or 'none'})",
            )
        slot.calls += 1
        timeout = self.settings.tool_timeout_s
        with bound(turn=call.turn_id, skill=slot.name, call_id=call.call_id):
            task = asyncio.get_running_loop().create_task(slot.skill.handle(call.tool, dict(call.args)))
            try:
                done, _ = await asyncio.wait({task}, timeout=timeout)
            except asyncio.CancelledError:
                task.cancel()
                raise
            if not done:
                task.cancel()
                slot.timeouts += 1
                message = (
                    f"tool {call.tool!r} of skill {slot.name!r} did not finish within {timeout:g} s; "
                    "it was cancelled and the host keeps serving"
                )
                slot.degrade(message)
                self.log.error("tool_timeout", tool=call.tool, after_s=timeout)
                self._start_work(self._publish_manifest(), name="manifest")
                raise WireError(ErrorCode.TIMEOUT, message)
            if task.cancelled():
                slot.failures += 1
                raise WireError(ErrorCode.TOOL_FAILED, f"tool {call.tool!r} was cancelled")
            failure = task.exception()
            if failure is not None:
                slot.failures += 1
                slot.note(f"tool {call.tool!r} raised {_describe(failure)}")
                self.log.error("tool_failed", tool=call.tool, error=_describe(failure), exc_info=failure)
                raise WireError(ErrorCode.TOOL_FAILED, _describe(failure))
            result = task.result()
            if not isinstance(result, ToolResult) or not isinstance(result.output, str):
                slot.failures += 1
                raise WireError(
                    ErrorCode.TOOL_FAILED,
                    f"tool {call.tool!r} returned {type(result).__name__}, not a ToolResult with str output",
                )
            effect = self._effect_to_wire(slot.name, result.side_effect)
            self.log.info("tool_called", tool=call.tool, side_effect=effect.kind if effect else None)
        return ToolReply(output=result.output, side_effect=effect, host=self.instance, skill=slot.name)

    def _effect_to_wire(self, skill: str, effect: SideEffect | None) -> SideEffectWire | None:
        if effect is None:
            return None
        if isinstance(effect, AudioStream):
            held = self.held.hold(skill, effect, time.monotonic())
            return AudioStreamEffect(
                effect_id=held.effect_id,
                content_type=f.ContentType(effect.content_type.value),
                patience_ms=int(effect.effective_patience().total_seconds() * 1000),
                label=effect.label,
                preroll_ms=effect.preroll_ms,
                has_complete_prompt=bool(effect.on_complete_prompt),
            )
        if isinstance(effect, InputClaim):
            held = self.held.hold(skill, effect, time.monotonic())
            return InputClaimEffect(effect_id=held.effect_id, title=effect.title)
        if isinstance(effect, PlaySound):
            return PlaySoundEffect(pcm_b64=base64.b64encode(effect.pcm).decode("ascii"))
        if isinstance(effect, CancelMedia):
            return CancelMediaEffect()
        if isinstance(effect, SetVolume):
            return SetVolumeEffect(level=max(0, min(100, int(effect.level))))
        self.log.warning(
            "side_effect_unknown", skill=skill, kind=getattr(effect, "kind", type(effect).__name__)
        )
        return None

    # -- focus (the FocusHandler of our FocusClient) ---------------------------------------------------------
    async def on_focus(self, change: f.FocusChange) -> None:
        self._apply_focus(change)

    def _apply_focus(self, change: f.FocusChange) -> None:
        activity = change.activity_id
        if activity in self.players:
            self.players[activity].apply(change.state, change.behavior)
            return
        if activity in self.claims:
            self.claims[activity].apply(change.state, change.reason)
            return
        if activity in self._finished:
            return
        held = self.held.take(change.meta.effect_id) if change.meta.effect_id else None
        if held is not None:
            if change.state is f.FocusState.NONE:
                self._start_work(self._drop_held(held, change.reason), name="drop")
            elif isinstance(held.effect, AudioStream):
                self._start_player(activity, held, change)
            else:
                session = self._new_claim(held.skill, held.effect, held.effect_id)
                session.bind(activity)
                self.claims[activity] = session
                session.apply(change.state, change.reason)
            return
        if change.meta.effect_id:
            # Focus thinks we hold an effect we don't know (expired, or from a
            # previous run with the same instance id): give it back.
            self.log.warning("focus_unknown_effect", activity_id=activity, effect_id=change.meta.effect_id)
            if change.state is not f.FocusState.NONE:
                self._start_work(self._release(activity, f.EndReason.ERROR), name="release")
            return
        if change.state is not f.FocusState.NONE:
            self._early[activity] = (time.monotonic(), change)

    async def on_patience_expired(self, activity_id: str) -> None:
        player = self.players.get(activity_id)
        hook = player.stream.on_patience_expired if player is not None else None
        if hook is None:
            return
        assert player is not None
        try:
            await asyncio.wait_for(hook(), self.settings.patience_hook_timeout_s)
            self.log.info("patience_hook_ran", skill=player.skill, activity_id=activity_id)
        except TimeoutError:
            self.log.warning(
                "patience_hook_timed_out", skill=player.skill, after_s=self.settings.patience_hook_timeout_s
            )
        except Exception as exc:
            self.log.error("patience_hook_raised", skill=player.skill, error=_describe(exc), exc_info=exc)

    async def on_effect_dropped(self, effect_id: str, reason: str) -> None:
        held = self.held.take(effect_id)
        if held is None:
            self.log.info("effect_dropped_unknown", effect_id=effect_id, reason=reason)
        else:
            self._start_work(self._drop_held(held, reason), name="drop")

    async def _discard(self, request: DiscardEffect, subject: str) -> Ok:
        held = self.held.take(request.effect_id)
        if held is None:
            self.log.info("discard_unknown", effect_id=request.effect_id, reason=request.reason)
        else:
            await self._drop_held(held, request.reason)
        return Ok()

    async def _drop_held(self, held: HeldEffect, reason: f.EndReason | str | None) -> None:
        """A held effect that will never start; a claim still hears its end."""
        self.log.info("effect_dropped", skill=held.skill, effect_id=held.effect_id, reason=str(reason))
        if isinstance(held.effect, InputClaim):
            session = self._new_claim(held.skill, held.effect, held.effect_id)
            await session.end(claim_end_reason(reason), release=False)

    # -- streams ---------------------------------------------------------------------------------
    def _start_player(self, activity: str, held: HeldEffect, change: f.FocusChange) -> None:
        assert isinstance(held.effect, AudioStream)
        player = StreamPlayer(
            activity_id=activity,
            skill=held.skill,
            effect_id=held.effect_id,
            stream=held.effect,
            send=self._send_frame,
            lead_ms=self.settings.stream_lead_ms,
        )
        player.apply(change.state, change.behavior)
        self.players[activity] = player
        self._drained[activity] = asyncio.get_running_loop().create_future()
        self.log.info("stream_started", skill=held.skill, activity_id=activity, label=held.effect.label)
        self._start_work(self._run_player(player), name=f"stream:{activity}", graceful=True)

    async def _run_player(self, player: StreamPlayer) -> None:
        activity = player.activity_id
        try:
            outcome = await player.run()
            self.log.info("stream_finished", skill=player.skill, activity_id=activity, outcome=outcome)
            if outcome == "ended":
                await self._wait_drained(activity)
                await self._release(activity, f.EndReason.RELEASED)
                prompt = player.stream.on_complete_prompt
                if prompt:
                    await self._request_completion(player, prompt)
            elif outcome == "failed":
                await self._release(activity, f.EndReason.ERROR)
            # stopped: focus sent NONE or forgot it (nothing to release), or
            # the host is stopping (on_stop releases).
        finally:
            self._finished.append(activity)
            self.players.pop(activity, None)
            self._drained.pop(activity, None)

    async def _wait_drained(self, activity: str) -> None:
        future = self._drained.get(activity)
        if future is None or self.settings.drain_timeout_s <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(future), self.settings.drain_timeout_s)

    async def _request_completion(self, player: StreamPlayer, prompt: str) -> None:
        message = Completion(
            prompt=prompt,
            silence_ms=max(0, min(10_000, int(player.stream.completion_silence_ms))),
            skill=player.skill,
            effect_id=player.effect_id,
        )
        try:
            await request_with_retry(self.nc, self.subjects.bridge_rpc(), message, timeout=2.0, deadline_s=30)
            self.log.info("completion_requested", skill=player.skill, effect_id=player.effect_id)
        except WireError as exc:
            self.log.error(
                "completion_failed", skill=player.skill, effect_id=player.effect_id, error=exc.message
            )

    async def _send_frame(self, frame: AudioFrame) -> None:
        await self.nc.publish(self.subjects.audio_out(frame.stream), encode_frame(frame))

    async def _send_inject(self, message: f.Inject) -> f.Injected:
        return await self.focus.inject(
            message.prompt,
            priority=message.priority,
            dedup_key=message.dedup_key,
            wait=message.wait,
            skill=message.skill,
            inject_id=message.inject_id,
        )

    async def _release(self, activity: str, reason: f.EndReason) -> None:
        try:
            await self.focus.release(activity, reason)
        except WireError as exc:
            self.log.warning("release_failed", activity_id=activity, error=f"{exc.code}: {exc.message}")

    # -- claims ---------------------------------------------------------------------------------
    def _new_claim(self, skill: str, claim: InputClaim, effect_id: str | None) -> ClaimSession:
        async def release(activity: str) -> None:
            await self._release(activity, f.EndReason.RELEASED)

        session = ClaimSession(
            skill=skill,
            claim=claim,
            effect_id=effect_id,
            send=self._send_frame,
            release=release,
            open_mic=self._open_mic,
            lead_ms=self.settings.stream_lead_ms,
        )
        self.live_claims.add(session)

        def forget(_: Any) -> None:
            self.live_claims.discard(session)
            if session.activity_id is not None:
                self._finished.append(session.activity_id)
                self.claims.pop(session.activity_id, None)

        session.finished.add_done_callback(forget)
        return session

    async def _start_input_claim(self, skill: str, claim: InputClaim) -> ClaimHandle:
        busy = next((s for s in self.live_claims if not s.ended), None)
        if busy is not None:
            raise ClaimBusyError(f"a claim of skill {busy.skill!r} is already live")
        session = self._new_claim(skill, claim, None)
        meta = f.ActivityMeta(kind=f.ActivityKind.CLAIM, skill=skill, title=claim.title)
        try:
            acquired = await self.focus.acquire(f.Channel.COMMS, skill, meta=meta)
        except WireError as exc:
            self.live_claims.discard(session)
            if exc.code == ErrorCode.CLAIM_BUSY:
                raise ClaimBusyError(exc.message) from None
            raise
        activity = acquired.activity_id
        session.bind(activity)
        self.claims[activity] = session
        if acquired.state == f.FocusState.FOREGROUND:
            session.apply(f.FocusState.FOREGROUND)
        early = self._early.pop(activity, None)
        if early is not None:
            session.apply(early[1].state, early[1].reason)
        return session.handle()

    async def _cancel_active_claim(self, skill: str, reason: ClaimEndReason) -> bool:
        session = next((s for s in self.live_claims if s.skill == skill and not s.ended), None)
        if session is None:
            return False
        await session.end(reason, release=True)
        return True

    async def _open_mic(self, handler: Callable[[bytes], Awaitable[None]]) -> MicTap:
        async def on_frame(msg: Msg) -> None:
            try:
                frame = decode_frame(msg.data)
            except WireError as exc:
                self.log.warning("mic_frame_refused", error=exc.message)
                return
            await handler(frame.pcm)

        sub = await self.nc.subscribe(self.subjects.audio_mic("claim"), cb=on_frame)
        await self.nc.flush()

        class Tap:
            async def close(self) -> None:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

        return Tap()

    # -- events from the bus ----------------------------------------------------------------------------
    def _guarded(self, handler: Callable[[Msg], Awaitable[None]]) -> Callable[[Msg], Awaitable[None]]:
        async def run(msg: Msg) -> None:
            try:
                await handler(msg)
            except WireError as exc:
                self.log.warning("event_refused", subject=msg.subject, code=str(exc.code), error=exc.message)
            except Exception:
                self.log.exception("event_handler_failed", subject=msg.subject)

        return run

    async def _on_inject_event(self, msg: Msg) -> None:
        self.watch.seen(decode(msg.data, f.InjectEvent))

    async def _on_played(self, msg: Msg) -> None:
        played = decode(msg.data, PlayedEvent)
        future = self._drained.get(played.stream_id)
        if played.drained and future is not None and not future.done():
            future.set_result(None)

    async def _on_client_event(self, msg: Msg) -> None:
        event = decode(msg.data, ClientEvent)
        for skill, handler in list(self._client_handlers.get(event.event, [])):
            self._start_work(self._run_client_handler(skill, handler, event), name=f"client:{skill}")

    async def _run_client_handler(self, skill: str, handler: ClientEventHandler, event: ClientEvent) -> None:
        try:
            await handler(dict(event.data))
        except Exception as exc:
            self.log.error(
                "client_event_handler_failed", skill=skill, client_event=event.event, error=_describe(exc)
            )

    async def _on_session_event(self, msg: Msg) -> None:
        session = decode(msg.data, SessionEvent)
        if session.connected:
            await self._reconfigure_all(self.language)
            await self._publish_manifest()

    async def _on_announce(self, msg: Msg) -> None:
        request = decode(msg.data, AnnounceRequest)
        if request.language and request.language != self.language:
            await self._reconfigure_all(request.language)
        await self._publish_manifest()

    # -- manifest and lease ----------------------------------------------------------------------------
    def manifest(self, *, bye: bool = False) -> Manifest:
        return Manifest(
            host=self.instance,
            persona=self.persona.name if self.persona else "",
            language=self.language,
            skills=[slot.manifest() for slot in self.slots.values()],
            bye=bye,
        )

    async def _publish_manifest(self, *, bye: bool = False) -> None:
        await self.nc.publish(self.subjects.skills_manifest(), encode(self.manifest(bye=bye)))

    async def _announce_periodically(self) -> None:
        while True:
            try:
                await self._publish_manifest()
            except Exception as exc:
                self.log.warning("manifest_publish_failed", error=_describe(exc))
            await asyncio.sleep(self.settings.announce_every_s)

    async def _expire_periodically(self) -> None:
        """Drop held effects nobody claimed and early notices nobody asked for."""
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for held in self.held.expire(now):
                self.log.warning("effect_expired", skill=held.skill, effect_id=held.effect_id)
                self._start_work(self._drop_held(held, "error"), name="expire")
            for activity, (seen_at, _) in list(self._early.items()):
                if now - seen_at > EARLY_NOTICE_S:
                    del self._early[activity]

    # -- our own tasks ---------------------------------------------------------------------------------
    def _start_work(
        self, coro: Coroutine[Any, Any, Any], name: str, *, graceful: bool = False
    ) -> asyncio.Task[Any]:
        """A task of ours; at stop, graceful ones (streams closing, so skills
        save positions) get a grace period, the rest are cancelled."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        tasks = self._graceful if graceful else self._work
        tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                self.log.error("work_failed", task=t.get_name(), error=_describe(t.exception()))  # type: ignore[arg-type]

        task.add_done_callback(done)
        return task

    async def _settle_work(self, grace_s: float) -> None:
        for task in self._work:
            task.cancel()
        pending = self._graceful | self._work
        if not pending:
            return
        _, still = await asyncio.wait(pending, timeout=grace_s)
        for task in still:
            task.cancel()
        if still:
            await asyncio.wait(still, timeout=grace_s)
