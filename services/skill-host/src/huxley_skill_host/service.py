"""The skill-host: runs skills and connects them to the bus.

- Loads the skills named by `--skills` / HUXLEY_SKILLS, or the persona's
  `skills:`, from the `huxley.skills` entry points; a skill that fails to
  load, declares a tool another skill already declared, or whose setup
  raises is isolated (status `failed`) and the others go on (lifecycle.py).
- Serves each skill's tools on skills.tool.<skill> (queue group per skill);
  a hung tool times out, a raising tool becomes `tool_failed` (tools.py).
- Announces every skill's manifest on skills.manifest (at start, on
  skills.announce, periodically, `bye` on a clean stop).
- Plays the streams and claims its tools returned once focus grants them
  (focus.notify.<host>): the pure core (core.py) decides what each notice
  means, playback.py carries it out.

This module is the bus adapter: subjects and focus callbacks in, the core
and the skills' coroutines out.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from huxley_runtime.bus import identity_name
from huxley_runtime.focus_client import FocusClient
from huxley_runtime.persona import Persona, load_persona
from huxley_runtime.service import Endpoint, Service
from huxley_runtime.settings import HuxleySettings
from huxley_sdk.context import ClientEventHandler
from huxley_skill_host.claims import ClaimSession
from huxley_skill_host.core import HostCore
from huxley_skill_host.held import HeldEffects
from huxley_skill_host.injector import InjectSender, InjectWatch
from huxley_skill_host.lifecycle import SkillLifecycle
from huxley_skill_host.management import SkillAdmin
from huxley_skill_host.outbox import InjectOutbox
from huxley_skill_host.playback import Playback, describe
from huxley_skill_host.settings import SkillHostSettings
from huxley_skill_host.slot import SkillSlot
from huxley_skill_host.streams import StreamPump
from huxley_wire.codec import Ok, decode, encode
from huxley_wire.errors import WireError
from huxley_wire.messages import focus as f
from huxley_wire.messages.audio import decode_played
from huxley_wire.messages.bridge import SessionEvent
from huxley_wire.messages.skills import (
    AnnounceRequest,
    ClientEvent,
    DeleteSkillSecret,
    DiscardEffect,
    Manifest,
    SetSkillConfig,
    SetSkillEnabled,
    SetSkillSecret,
)

EXPIRE_EVERY_S = 1.0


class SkillHostService(Service):
    name = "skill-host"
    description = "Runs Huxley skills and serves their tools"
    settings_class = SkillHostSettings
    settings: SkillHostSettings

    def __init__(self, settings: HuxleySettings | None = None) -> None:
        if settings is not None and not isinstance(settings, SkillHostSettings):
            settings = SkillHostSettings.model_construct(**dict(settings))
        super().__init__(settings)
        # Our focus holder, host id and output owner: the identity name our
        # permissions are granted to (focus.rpc.<it>, audio.out.<it>.*, ...).
        self.holder = identity_name(self.settings) or self.instance
        self.persona: Persona | None = None
        self.language = "en"
        self.data_dir = Path(".")
        self.slots: dict[str, SkillSlot] = {}
        self.core = HostCore(self.settings.held_effect_ttl_s)
        self.playback = Playback(self, self.core)
        self.skills = SkillLifecycle(self)
        self.admin = SkillAdmin(self)  # the client's skills panel (management.py)
        self.watch = InjectWatch()
        self._subscriptions: list[Subscription] = []
        self._work: set[asyncio.Task[Any]] = set()
        self._graceful: set[asyncio.Task[Any]] = set()
        self._focus: FocusClient | None = None
        self._injects: InjectSender | None = None

    @property
    def injects(self) -> InjectSender:
        if self._injects is None:
            raise RuntimeError("skill-host: not started")
        return self._injects

    @property
    def focus(self) -> FocusClient:
        if self._focus is None:
            raise RuntimeError("skill-host: not started")
        return self._focus

    # What is playing, for health and tests.
    @property
    def players(self) -> dict[str, StreamPump]:
        return self.playback.pumps

    @property
    def live_claims(self) -> set[ClaimSession]:
        sessions = self.playback.sessions
        return {sessions[claim_id] for claim_id in self.core.claims if claim_id in sessions}

    @property
    def held(self) -> HeldEffects:
        return self.core.held

    # -- lifecycle ---------------------------------------------------------------------------
    async def on_start(self) -> None:
        self.persona = load_persona(self.settings.persona, self.settings.personas_dir)
        self.language = self.persona.language_code
        self.data_dir = self.persona.data_dir(self.settings.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # focus.notify.<holder> (served by the client, which also keeps our
        # lease) tells us what to play.
        self._focus = FocusClient(
            self.nc,
            self.subjects,
            self.holder,
            self,
            patience_hook_timeout_s=self.settings.patience_hook_timeout_s,
        )
        await self._focus.start()
        self.skills.load(self.settings.skill_list() or list(self.persona.skills))
        # Injects a previous run left undelivered go first, before any skill runs.
        outbox = InjectOutbox(self.settings.inject_outbox_dir or self.data_dir / "outbox")
        self._injects = InjectSender(outbox, self.send_inject, ttl_s=self.settings.inject_ttl_s)
        await self._injects.replay({name for name, slot in self.slots.items() if slot.skill is not None})
        self.spawn(self._injects.run(), name="outbox")
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
            if slot.skill is not None and not self.admin.enabled(slot.name):
                slot.status = "disabled"  # turned off from the skills panel
            elif slot.skill is not None:
                self.start_work(self.skills.bring_up(slot), name=f"setup:{slot.name}")
        self.spawn(self._announce_periodically(), name="announce")
        self.spawn(self._expire_periodically(), name="expire")

    def endpoints(self) -> list[Endpoint]:
        setup: dict[Any, Any] = {
            SetSkillEnabled: self.admin.set_enabled,
            SetSkillConfig: self.admin.set_config,
            SetSkillSecret: self.admin.set_secret,
            DeleteSkillSecret: self.admin.delete_secret,
        }
        # The panel's writes on a subject per skill, which only a host allowed
        # to run that skill may subscribe: its secrets go nowhere else.
        s, holder = self.subjects, self.holder
        host = Endpoint("host", s.skill_host_rpc(holder), {DiscardEffect: self._discard})
        return [host] + [Endpoint(f"setup-{n}", s.skill_setup(holder, n), setup) for n in self.slots]

    async def on_stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.publish_manifest(bye=True)
        await self.playback.perform(self.core.stop())
        await self._settle_work(self.settings.teardown_timeout_s)
        if self._focus is not None:
            await self._focus.stop(release=True)  # gives back the streams we stopped
        for slot in self.slots.values():
            await self.skills.tear_down(slot)
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
            "holder": self.holder,  # its focus holder and host id (skills.host.<holder>)
            "persona": self.persona.name if self.persona else None,
            "language": self.language,
            "skills": {name: slot.health() for name, slot in self.slots.items()},
            "focus": focus,
            "streams": len(self.players),
            "claims": len(self.core.claims),
            "held_effects": len(self.core.held),
            "injects_pending": len(self._injects.pending) if self._injects else 0,
        }

    # -- focus (the FocusHandler of our FocusClient) and the bridge's discard --------------------
    async def on_focus(self, change: f.FocusChange) -> None:
        self.playback.dispatch(self.core.on_focus(change, time.monotonic()))

    async def on_patience_expired(self, activity_id: str) -> None:
        await self.playback.perform(self.core.on_patience_expired(activity_id))

    async def on_effect_dropped(self, effect_id: str, reason: str) -> None:
        self.playback.dispatch(self.core.on_effect_dropped(effect_id, reason))

    async def _discard(self, request: DiscardEffect, subject: str) -> Ok:
        await self.playback.perform(self.core.discard(request.effect_id, request.reason))
        return Ok()

    async def _expire_periodically(self) -> None:
        while True:
            await asyncio.sleep(EXPIRE_EVERY_S)
            self.playback.dispatch(self.core.expire(time.monotonic()))

    async def send_inject(self, message: f.Inject) -> f.Injected:
        return await self.focus.inject(
            message.prompt,
            priority=message.priority,
            dedup_key=message.dedup_key,
            wait=message.wait,
            skill=message.skill,
            inject_id=message.inject_id,
        )

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
        for played in decode_played(msg.data, ends_only=True):  # only a stream's end matters here
            if played.drained:
                self.playback.drained(played.stream_id)

    async def _on_client_event(self, msg: Msg) -> None:
        event = decode(msg.data, ClientEvent)
        for skill, handler in list(self.skills.client_handlers.get(event.event, [])):
            self.start_work(self._run_client_handler(skill, handler, event), name=f"client:{skill}")

    async def _run_client_handler(self, skill: str, handler: ClientEventHandler, event: ClientEvent) -> None:
        try:
            await handler(dict(event.data))
        except Exception as exc:
            self.log.error(
                "client_event_handler_failed", skill=skill, client_event=event.event, error=describe(exc)
            )

    async def _on_session_event(self, msg: Msg) -> None:
        session = decode(msg.data, SessionEvent)
        if session.connected:
            await self.skills.reconfigure_all(self.language)
            await self.publish_manifest()

    async def _on_announce(self, msg: Msg) -> None:
        request = decode(msg.data, AnnounceRequest)
        if request.language and request.language != self.language:
            await self.skills.reconfigure_all(request.language)
        await self.publish_manifest()

    # -- manifest and lease ----------------------------------------------------------------------------
    def manifest(self, *, bye: bool = False) -> Manifest:
        return Manifest(
            host=self.holder,
            persona=self.persona.name if self.persona else "",
            language=self.language,
            skills=[self.admin.describe(slot) for slot in self.slots.values()],
            bye=bye,
        )

    async def publish_manifest(self, *, bye: bool = False) -> None:
        await self.nc.publish(self.subjects.skills_manifest(), encode(self.manifest(bye=bye)))

    async def _announce_periodically(self) -> None:
        while True:
            try:
                await self.publish_manifest()
            except Exception as exc:
                self.log.warning("manifest_publish_failed", error=describe(exc))
            await asyncio.sleep(self.settings.announce_every_s)

    # -- our own tasks ---------------------------------------------------------------------------------
    def start_work(
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
                self.log.error("work_failed", task=t.get_name(), error=describe(t.exception()))  # type: ignore[arg-type]

        task.add_done_callback(done)
        return task

    async def _settle_work(self, grace_s: float) -> None:
        """Cancel plain work; give graceful work (and what it starts on the
        way out, e.g. a stream's last steps) `grace_s` in all, then cancel it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        while True:
            for task in self._work:
                task.cancel()
            pending = self._graceful | self._work
            left = deadline - loop.time()
            if not pending or left <= 0:
                break
            await asyncio.wait(pending, timeout=left)
        still = self._graceful | self._work
        for task in still:
            task.cancel()
        if still:
            await asyncio.wait(still, timeout=grace_s)
