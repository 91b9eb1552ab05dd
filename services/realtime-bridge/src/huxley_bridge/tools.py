"""The tools the model may call, from the skill-hosts' manifests.

Each host publishes its manifest at start, on `skills.announce` and every
10 s; `bye` on a clean stop. A host not heard from for `stale_after_s` is
gone. The same skill on several hosts (scaled out) is one set of tools. A
skill that declares a tool another skill already declared is refused whole,
in the order the skills were first heard of (SKILLS-7, `duplicate_tools`).
Only serving skills (`ok`, `degraded`) contribute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from huxley_wire.messages.skills import Manifest, SkillManifest, duplicate_tools

SERVING = ("ok", "degraded")


@dataclass
class _Host:
    manifest: Manifest
    seen_at: float


@dataclass
class ToolRegistry:
    stale_after_s: float = 35.0
    persona: str | None = None  # set: only hosts serving this persona (or none named) count
    _hosts: dict[str, _Host] = field(default_factory=dict)  # in the order first heard of
    _view: tuple[Any, ...] = ()  # what the model was last told
    conflicts: list[str] = field(default_factory=list)  # why skills were refused

    def apply(self, manifest: Manifest, now: float) -> bool:
        """Take a manifest in; True if the model's tools or context changed."""
        if manifest.bye:
            self._hosts.pop(manifest.host, None)
        else:
            self._hosts[manifest.host] = _Host(manifest, now)  # a known host keeps its place
        return self._refresh()

    def expire(self, now: float) -> bool:
        gone = [h for h, v in self._hosts.items() if now - v.seen_at > self.stale_after_s]
        for host in gone:
            del self._hosts[host]
        return self._refresh() if gone else False

    def next_expiry(self) -> float | None:
        return min((v.seen_at + self.stale_after_s for v in self._hosts.values()), default=None)

    def _ours(self) -> list[_Host]:
        return [
            h
            for h in self._hosts.values()
            if self.persona is None or h.manifest.persona in (self.persona, "")
        ]

    def _skills(self) -> list[SkillManifest]:
        """Every serving skill once, in the order hosts and skills were first
        seen, without the skills refused for a clashing tool name."""
        ours = self._ours()
        refused = duplicate_tools([host.manifest for host in ours])
        self.conflicts = list(refused.values())
        seen: dict[str, SkillManifest] = {}
        for host in ours:
            for skill in host.manifest.skills:
                if skill.status in SERVING and skill.name not in seen and skill.name not in refused:
                    seen[skill.name] = skill
        return list(seen.values())

    def _refresh(self) -> bool:
        # Order-blind: a host leaving while another serves the same skills changes nothing.
        view = tuple(
            sorted(
                (
                    s.name,
                    s.prompt_context,
                    tuple((t.name, t.description, repr(t.parameters)) for t in s.tools),
                )
                for s in self._skills()
            )
        )
        changed = view != self._view
        self._view = view
        return changed

    def switch(self, persona: str) -> bool:
        """Serve another persona's hosts; True if the model's tools changed."""
        self.persona = persona
        return self._refresh()

    def served(self) -> set[str]:
        """The persona's skills some host serves now."""
        return {s.name for s in self._skills()}

    def tools(self) -> dict[str, str]:
        """tool name -> skill."""
        return {tool.name: skill.name for skill in self._skills() for tool in skill.tools}

    def definitions(self) -> list[dict[str, Any]]:
        """The `tools` of a session.update."""
        return [
            {
                "type": "function",
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.parameters,
            }
            for skill in self._skills()
            for tool in skill.tools
        ]

    def prompt_contexts(self) -> list[str]:
        return [s.prompt_context.strip() for s in self._skills() if s.prompt_context.strip()]

    @property
    def hosts(self) -> list[str]:
        return list(self._hosts)
