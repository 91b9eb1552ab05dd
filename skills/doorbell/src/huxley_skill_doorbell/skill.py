"""The doorbell skill. Persona config (all optional):

skills:
  doorbell:
    ring_every_s: 600          # simulate a ring every 10 minutes (0 = never)
    quiet_s: 10                # rings closer together than this count once
    priority: block_behind_comms   # normal | block_behind_comms | preempt
    announce_prompt: "Tell the user: someone is at the door ({visits} visits today)."
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from huxley_sdk import InjectPriority, SkillContext, SkillLogger, SkillStorage, ToolDefinition, ToolResult

DEFAULT_PROMPTS = {
    "en": "Tell the user: someone is at the door. Say it briefly and warmly.",
    "es": "Dile al usuario que alguien está llamando a la puerta. Dilo breve y con calidez.",
}
RING_EVENT = "doorbell.ring"
RANG_EVENT = "doorbell.rang"
VISITS_KEY = "visit_count"
LAST_RING_KEY = "last_ring"


def _bucket(language: str) -> str:
    return "es" if (language or "").lower().startswith("es") else "en"


class DoorbellSkill:
    config_schema: ClassVar[dict[str, Any] | None] = {
        "type": "object",
        "properties": {
            "ring_every_s": {"type": "number", "minimum": 0, "default": 0},
            "quiet_s": {"type": "number", "minimum": 0, "default": 10},
            "priority": {"type": "string", "enum": [p.value for p in InjectPriority]},
            "announce_prompt": {"type": "string"},
        },
    }
    data_schema_version: ClassVar[int] = 1

    def __init__(
        self,
        *,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[Any]] | None = None,
    ) -> None:
        # The runtime builds skills with no arguments; tests pass a clock and
        # a sleep so nothing waits for real.
        self._clock = clock or time.monotonic
        self._sleep = sleep or asyncio.sleep
        self._ctx: SkillContext | None = None
        self._language = "en"
        self._visits = 0
        self._last_ring: str | None = None  # ISO time of the last counted ring
        self._last_ring_at: float | None = None  # our clock, for the quiet period
        self._quiet_s = 10.0
        self._priority = InjectPriority.BLOCK_BEHIND_COMMS

    @property
    def name(self) -> str:
        return "doorbell"

    @property
    def tools(self) -> list[ToolDefinition]:
        description = {
            "en": "How many times the doorbell rang, and when it last rang.",
            "es": "Cuántas veces ha sonado el timbre y cuándo sonó por última vez.",
        }[_bucket(self._language)]
        return [
            ToolDefinition(name="doorbell_visits", description=description, parameters={"type": "object"})
        ]

    # -- lifecycle ---------------------------------------------------------------
    async def setup(self, ctx: SkillContext) -> None:
        self._apply_config(ctx)
        storage = self._storage
        raw = await storage.get_setting(VISITS_KEY, "0")
        try:
            self._visits = int(raw or "0")
        except ValueError:
            await ctx.logger.awarning("visit_count_unreadable", value=raw)
            self._visits = 0
        self._last_ring = await storage.get_setting(LAST_RING_KEY)
        ctx.subscribe_client_event(RING_EVENT, self._on_client_ring)
        every = float(ctx.config.get("ring_every_s", 0) or 0)
        if every > 0:
            ctx.background_task(
                "simulated_doorbell",
                lambda: self._ring_periodically(every),
                restart_on_crash=True,
                max_restarts_per_hour=10,
            )
        await ctx.logger.ainfo("setup", visit_count=self._visits, ring_every_s=every)

    async def reconfigure(self, ctx: SkillContext) -> None:
        self._apply_config(ctx)
        await ctx.logger.ainfo("reconfigure", language=self._language)

    def _apply_config(self, ctx: SkillContext) -> None:
        self._ctx = ctx
        self._language = ctx.language or "en"
        self._quiet_s = float(ctx.config.get("quiet_s", 10) or 0)
        try:
            self._priority = InjectPriority(
                ctx.config.get("priority", InjectPriority.BLOCK_BEHIND_COMMS.value)
            )
        except ValueError:
            self._priority = InjectPriority.BLOCK_BEHIND_COMMS

    @property
    def _context(self) -> SkillContext:
        if self._ctx is None:
            raise RuntimeError("DoorbellSkill used before setup()")
        return self._ctx

    @property
    def _storage(self) -> SkillStorage:
        return self._context.storage

    @property
    def _logger(self) -> SkillLogger:
        return self._context.logger

    # -- the doorbell ------------------------------------------------------------
    async def _on_client_ring(self, data: dict[str, Any]) -> None:
        who = data.get("who")
        await self.ring(source="client", who=who if isinstance(who, str) else None)

    async def _ring_periodically(self, every_s: float) -> None:
        while True:
            await self._sleep(every_s)
            await self.ring(source="simulated")

    async def ring(self, *, source: str, who: str | None = None) -> bool:
        """Someone rang. Returns False when the ring fell in the quiet period."""
        now = self._clock()
        if self._last_ring_at is not None and now - self._last_ring_at < self._quiet_s:
            await self._logger.ainfo("ring_ignored", source=source, quiet_s=self._quiet_s)
            return False
        self._last_ring_at = now
        self._visits += 1
        self._last_ring = datetime.now(UTC).isoformat(timespec="seconds")
        # Persist before announcing: a crash after this still counts the visit.
        await self._storage.set_setting(VISITS_KEY, str(self._visits))
        await self._storage.set_setting(LAST_RING_KEY, self._last_ring)
        await self._logger.ainfo("ring", source=source, visit_count=self._visits, who=who)
        await self._context.emit_server_event(RANG_EVENT, {"visits": self._visits, "who": who})
        await self._context.inject_turn(self._prompt(who), dedup_key="doorbell", priority=self._priority)
        return True

    def _prompt(self, who: str | None) -> str:
        template = self._context.config.get("announce_prompt")
        if not isinstance(template, str) or not template:
            template = DEFAULT_PROMPTS[_bucket(self._language)]
        text = template.replace("{visits}", str(self._visits))
        if who:
            text += f" ({who})"
        return text

    # -- the tool ----------------------------------------------------------------
    async def handle(self, tool_name: str, args: dict[str, Any]) -> ToolResult:
        if tool_name != "doorbell_visits":
            return ToolResult(output=json.dumps({"error": f"unknown tool {tool_name}"}))
        return ToolResult(output=json.dumps({"visits": self._visits, "last_ring": self._last_ring}))

    def prompt_context(self) -> str:
        if not self._visits:
            return ""
        if _bucket(self._language) == "es":
            return f"El timbre ha sonado {self._visits} veces; la última a las {self._last_ring}."
        return f"The doorbell has rung {self._visits} times; last at {self._last_ring}."
