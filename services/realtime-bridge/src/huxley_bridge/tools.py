"""The tools the model may call, from the skill-hosts' manifests.

Each host publishes its manifest at start, on `skills.announce` and every
10 s; `bye` on a clean stop. A host not heard from for `stale_after_s` is
gone. The same skill on several hosts (scaled out) is one set of tools; a
tool name claimed by two different skills keeps the first and reports the
clash. Only skills whose status is `ok` contribute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from huxley_wire.messages.skills import Manifest, SkillManifest


@dataclass
class _Host:
    manifest: Manifest
    seen_at: float


@dataclass
class ToolRegistry:
    stale_after_s: float = 35.0
    _hosts: dict[str, _Host] = field(default_factory=dict)
    _view: tuple[Any, ...] = ()  # what the model was last told
    conflicts: list[str] = field(default_factory=list)

    def apply(self, manifest: Manifest, now: float) -> bool:
        """Take a manifest in; True if the model's tools or context changed."""
        if manifest.bye:
            self._hosts.pop(manifest.host, None)
        else:
            self._hosts[manifest.host] = _Host(manifest, now)
        return self._refresh()

    def expire(self, now: float) -> bool:
        gone = [h for h, v in self._hosts.items() if now - v.seen_at > self.stale_after_s]
        for host in gone:
            del self._hosts[host]
        return self._refresh() if gone else False

    def next_expiry(self) -> float | None:
        return min((v.seen_at + self.stale_after_s for v in self._hosts.values()), default=None)

    def _skills(self) -> list[SkillManifest]:
        """Every healthy skill once, in the order hosts and skills were first seen."""
        seen: dict[str, SkillManifest] = {}
        for host in self._hosts.values():
            for skill in host.manifest.skills:
                if skill.status == "ok" and skill.name not in seen:
                    seen[skill.name] = skill
        return list(seen.values())

    def _refresh(self) -> bool:
        view = tuple(
            sorted(
                (
                    s.name,
                    s.prompt_context,
                    tuple((t.name, t.description, repr(t.parameters)) for t in s.tools),
                )
                for s in self._skills()
            )
        )  # order-blind: a host leaving while another serves the same skills changes nothing
        changed = view != self._view
        self._view = view
        return changed

    def tools(self) -> dict[str, str]:
        """tool name -> skill."""
        owners: dict[str, str] = {}
        self.conflicts = []
        for skill in self._skills():
            for tool in skill.tools:
                if tool.name in owners and owners[tool.name] != skill.name:
                    self.conflicts.append(
                        f"tool {tool.name!r} of {skill.name!r} clashes with {owners[tool.name]!r}"
                    )
                    continue
                owners.setdefault(tool.name, skill.name)
        return owners

    def definitions(self) -> list[dict[str, Any]]:
        """The `tools` of a session.update."""
        owners = self.tools()
        out = []
        for skill in self._skills():
            for tool in skill.tools:
                if owners.get(tool.name) == skill.name:
                    out.append(
                        {
                            "type": "function",
                            "name": tool.name,
                            "description": tool.description,
                            "parameters": tool.parameters,
                        }
                    )
        return out

    def prompt_contexts(self) -> list[str]:
        return [s.prompt_context.strip() for s in self._skills() if s.prompt_context.strip()]

    @property
    def hosts(self) -> list[str]:
        return sorted(self._hosts)
