"""Each skill's life in the host: loading, its SkillContext over the bus,
setup (retried while a peer it needs is down), the data schema check,
reconfiguring on a new session or language, and teardown."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING, Any

from huxley_runtime.retry import FOREVER, Backoff, retrying
from huxley_runtime.service import Endpoint
from huxley_runtime.storage_client import SchemaClient, SettingsClient
from huxley_sdk import ClaimEndReason, ClaimHandle, InputClaim, SkillContext
from huxley_sdk.context import ClientEventHandler
from huxley_skill_host.injector import Injector
from huxley_skill_host.loader import SkillLoadError, ToolOwners, installed, load_skill, read_tools
from huxley_skill_host.playback import describe
from huxley_skill_host.secret_file import FileSecrets, persona_home
from huxley_skill_host.skill_logger import BusSkillLogger
from huxley_skill_host.slot import SkillSlot
from huxley_skill_host.supervisor import TaskSupervisor
from huxley_skill_host.tools import call_tool
from huxley_wire.codec import encode
from huxley_wire.errors import WireError
from huxley_wire.messages.skills import ServerEvent, ToolCall

if TYPE_CHECKING:
    from huxley_skill_host.service import SkillHostService

# A skill's setup that needs a peer which is down (unavailable, timeout) waits
# for it; the peers start beside us, so ask again soon.
SETUP = FOREVER.but(backoff=Backoff(first_s=0.1, max_s=30.0))
RECORD_SCHEMA_FOR_S = 3600.0
WAITING_FOR_PEER = "setup needs a peer that is down"


class SkillLifecycle:
    def __init__(self, host: SkillHostService) -> None:
        self.host = host
        self.settings = host.settings
        self.log = host.log
        self.client_handlers: dict[str, list[tuple[str, ClientEventHandler]]] = {}
        self._reconfiguring = asyncio.Lock()

    def load(self, names: list[str]) -> None:
        available = installed()
        owners = ToolOwners()
        for name in names:
            slot = self.host.slots.setdefault(name, SkillSlot(name))
            try:
                self.host.subjects.skill_tool(name)  # the name must be a subject token
                skill = load_skill(name, available)
                owners.claim(name, read_tools(skill))
            except (SkillLoadError, ValueError) as exc:
                slot.fail(str(exc))
                self.log.error("skill_refused", skill=name, error=str(exc))
                continue
            slot.skill = skill

    def context(self, slot: SkillSlot) -> SkillContext:
        assert self.host.persona is not None
        name = slot.name
        logger = BusSkillLogger(name)
        slot.supervisor = TaskSupervisor(logger, on_gave_up=lambda failure: self._task_gave_up(slot, failure))
        injector = Injector(
            name,
            self.host.injects,
            self.host.watch,
            wait_timeout_s=self.settings.inject_wait_timeout_s,
            handoff_s=self.settings.inject_handoff_s,
        )

        async def start_input_claim(claim: InputClaim, /) -> ClaimHandle:
            return await self.host.playback.start_input_claim(name, claim)

        async def cancel_active_claim(*, reason: ClaimEndReason = ClaimEndReason.NATURAL) -> bool:
            return await self.host.playback.cancel_active_claim(name, reason)

        def subscribe_client_event(key: str, handler: ClientEventHandler, /) -> None:
            self.client_handlers.setdefault(key, []).append((name, handler))

        async def emit_server_event(event: str, data: dict[str, Any] | None = None, /) -> None:
            message = ServerEvent(event=event, data=dict(data or {}), skill=name)
            await self.host.nc.publish(self.host.subjects.server_event(), encode(message))

        return SkillContext(
            logger=logger,
            storage=SettingsClient(
                self.host.nc,
                self.host.subjects,
                self.host.persona.name,
                name,
                deadline_s=self.settings.storage_retry_s,
            ),
            secrets=FileSecrets.for_skill(
                self.host.data_dir, name, persona_home(self.settings.persona, self.settings.personas_dir)
            ),
            persona_data_dir=self.host.data_dir,
            config=self.host.admin.config(name, self.host.language),
            language=self.host.language,
            inject_turn=injector.inject_turn,
            inject_turn_and_wait=injector.inject_turn_and_wait,
            background_task=slot.supervisor.start,
            start_input_claim=start_input_claim,
            cancel_active_claim=cancel_active_claim,
            subscribe_client_event=subscribe_client_event,
            emit_server_event=emit_server_event,
        )

    async def bring_up(self, slot: SkillSlot) -> None:
        """Schema check, setup (retried while a peer it needs is down), then
        serve the tools and record the schema version."""
        assert slot.skill is not None and self.host.persona is not None
        skill = slot.skill
        current = int(getattr(skill, "data_schema_version", 1) or 1)
        checked = await self._check_schema(slot, current, wait_s=self.settings.schema_wait_s)
        setup = getattr(skill, "setup", None)

        async def attempt() -> None:
            ctx = self.context(slot)
            slot.ctx = ctx
            if slot.status != "waiting":  # a waiting skill says why until it is set up
                slot.error = None  # from here on, an error is this attempt's (a background task's)
            if callable(setup):
                await asyncio.wait_for(setup(ctx), self.settings.setup_timeout_s)

        async def waiting(retry: int, exc: BaseException, pause_s: float) -> None:
            message = exc.message if isinstance(exc, WireError) else str(exc)
            slot.status, slot.error = "waiting", f"{WAITING_FOR_PEER} ({message}); retrying"
            self.log.warning("skill_setup_waiting", skill=slot.name, error=message, retry_in_s=pause_s)
            await self._undo_setup(slot)

        try:
            await retrying(SETUP, attempt, retry_if=SETUP.retries, on_retry=waiting)
        except TimeoutError:
            await self._abandon(slot, f"setup did not finish within {self.settings.setup_timeout_s:g} s")
            return
        except Exception as exc:
            await self._abandon(slot, f"setup raised {describe(exc)}", exc)
            return
        if slot.error is not None and slot.error.startswith(WAITING_FOR_PEER):
            slot.error = None  # the peer came back and setup finished
        # Say "ok" only once the tool subject is live: health and status must not
        # promise a skill nobody answers for yet. A background task that failed
        # meanwhile left its error: then the skill serves, degraded.
        await self.host.serve(
            Endpoint(
                f"tool-{slot.name}",
                self.host.subjects.skill_tool(slot.name),
                {ToolCall: lambda call, subject: call_tool(self.host, slot, call)},
                concurrent=True,
                queue_group=f"skill.{slot.name}",
            )
        )
        slot.status = "degraded" if slot.error else "ok"
        self.log.info("skill_ready", skill=slot.name, tools=slot.tool_names())
        await self.host.publish_manifest()
        await self._record_schema(slot, current, checked=checked)

    async def _check_schema(self, slot: SkillSlot, current: int, *, wait_s: float) -> bool:
        """Compare the recorded data schema version with the skill's (a warning
        on mismatch, as the reference does); False when storage did not answer
        within `wait_s`, so the check runs again after setup."""
        assert self.host.persona is not None
        schema = SchemaClient(
            self.host.nc, self.host.subjects, self.host.persona.name, slot.name, deadline_s=wait_s
        )
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
        assert self.host.persona is not None
        if not checked:
            await self._check_schema(slot, current, wait_s=RECORD_SCHEMA_FOR_S)
        schema = SchemaClient(
            self.host.nc,
            self.host.subjects,
            self.host.persona.name,
            slot.name,
            deadline_s=RECORD_SCHEMA_FOR_S,
        )
        try:
            await schema.set_version(current)
        except WireError as exc:
            self.log.warning("skill_schema_not_recorded", skill=slot.name, error=exc.message)

    async def _abandon(self, slot: SkillSlot, error: str, exc: BaseException | None = None) -> None:
        slot.fail(error)
        self.log.error("skill_setup_failed", skill=slot.name, error=error, exc_info=exc)
        await self._undo_setup(slot)
        await self.host.publish_manifest()

    async def _undo_setup(self, slot: SkillSlot) -> None:
        """Forget what a failed setup registered: its tasks and client handlers."""
        if slot.supervisor is not None:
            await slot.supervisor.stop()
        for key, handlers in list(self.client_handlers.items()):
            self.client_handlers[key] = [(owner, h) for owner, h in handlers if owner != slot.name]

    async def tear_down(self, slot: SkillSlot) -> None:
        teardown = getattr(slot.skill, "teardown", None)
        if slot.serving and callable(teardown):
            try:
                await asyncio.wait_for(teardown(), self.settings.teardown_timeout_s)
            except Exception as exc:
                self.log.warning("skill_teardown_failed", skill=slot.name, error=describe(exc))
        await self._undo_setup(slot)

    def _task_gave_up(self, slot: SkillSlot, failure: Any) -> None:
        slot.degrade(
            f"background task {failure.name!r} failed for good after {failure.restart_count} crashes "
            f"({failure.last_exception_class}: {failure.last_exception_message})"
        )
        self.host.start_work(self.host.publish_manifest(), name="manifest")

    async def reconfigure_all(self, language: str) -> None:
        assert self.host.persona is not None
        async with self._reconfiguring:
            self.host.language = language
            for slot in self.host.slots.values():
                if not slot.serving or slot.ctx is None:
                    continue
                slot.ctx = dataclasses.replace(
                    slot.ctx, language=language, config=self.host.admin.config(slot.name, language)
                )
                reconfigure = getattr(slot.skill, "reconfigure", None)
                if not callable(reconfigure):
                    continue
                try:
                    await asyncio.wait_for(reconfigure(slot.ctx), self.settings.setup_timeout_s)
                except Exception as exc:
                    slot.degrade(f"reconfigure raised {describe(exc)}")
                    self.log.error("skill_reconfigure_failed", skill=slot.name, error=describe(exc))
