"""One skill in the host: the skill, its context and supervisor, and how it
is doing (what the manifest and the health detail show)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from huxley_sdk import Skill, SkillContext, ToolDefinition
from huxley_skill_host.supervisor import TaskSupervisor
from huxley_wire.messages.skills import SkillManifest, SkillStatus, ToolManifest

SERVING: frozenset[SkillStatus] = frozenset({"ok", "degraded"})


@dataclass
class SkillSlot:
    name: str
    skill: Skill | None = None
    status: SkillStatus = "starting"
    error: str | None = None
    ctx: SkillContext | None = None
    supervisor: TaskSupervisor | None = None
    calls: int = 0
    failures: int = 0
    timeouts: int = 0
    incidents: list[str] = field(default_factory=list)  # the latest few, newest last

    @property
    def serving(self) -> bool:
        return self.status in SERVING and self.skill is not None

    def fail(self, error: str) -> None:
        self.status, self.error = "failed", error
        self.note(error)

    def degrade(self, error: str) -> None:
        if self.status == "ok":
            self.status = "degraded"
        self.error = error
        self.note(error)

    def note(self, incident: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        self.incidents = [*self.incidents[-4:], f"{stamp} {incident}"]

    def tools(self) -> list[ToolDefinition]:
        if self.skill is None:
            return []
        try:
            return list(self.skill.tools)
        except Exception:
            return []

    def tool_names(self) -> list[str]:
        return [tool.name for tool in self.tools()]

    def prompt_context(self) -> str:
        contribute = getattr(self.skill, "prompt_context", None)
        if not callable(contribute):
            return ""
        try:
            text = contribute()
        except Exception as exc:
            self.note(f"prompt_context raised {type(exc).__name__}: {exc}")
            return ""
        return text if isinstance(text, str) else ""

    def manifest(self) -> SkillManifest:
        serving = self.serving
        return SkillManifest(
            name=self.name,
            tools=[
                ToolManifest(name=t.name, description=t.description, parameters=t.parameters)
                for t in (self.tools() if serving else [])
            ],
            prompt_context=self.prompt_context() if serving else "",
            status=self.status,
            error=self.error,
        )

    def health(self) -> dict[str, Any]:
        detail: dict[str, Any] = {"status": self.status}
        if self.error:
            detail["error"] = self.error
        if self.serving:
            detail["tools"] = len(self.tool_names())
            detail["calls"] = self.calls
        if self.failures:
            detail["tool_failures"] = self.failures
        if self.timeouts:
            detail["tool_timeouts"] = self.timeouts
        if self.supervisor is not None and self.supervisor.running:
            detail["tasks"] = len(self.supervisor.running)
        if self.incidents:
            detail["incidents"] = list(self.incidents)
        return detail
