"""The client's skills panel over the bus.

`SkillsDirectory` (pure) follows the hosts' manifests on skills.manifest and
answers `get_skills_state` in the reference's `skills_state` shape, with what
our deployment adds per skill: its host, status, error and tools.
`SkillsPanel` sends the panel's writes (`set_skill_enabled`,
`set_skill_config`, `set_skill_secret`, `delete_skill_secret`) to each host
whose manifest lists the skill, on skills.setup.<host>.<skill>, which only a
host allowed to run that skill may serve (a manifest can lie; the
permissions cannot), and answers with a fresh
`skills_state` (and a `status` when the host refused or did not answer), as
the reference pushes a fresh state after every write. Secret values are
passed on once and never logged, stored or sent back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client

from huxley_audio_io import client_protocol as proto
from huxley_runtime.logging import get_logger
from huxley_runtime.rpc import request
from huxley_wire.errors import WireError
from huxley_wire.messages import skills as wire
from huxley_wire.subjects import Subjects

FORGET_AFTER_S = 35.0  # hosts announce every 10 s; three missed, the host is gone

log = get_logger(component="skills_panel")


@dataclass
class _Heard:
    manifest: wire.Manifest
    at: float


class SkillsDirectory:
    def __init__(self) -> None:
        self._hosts: dict[str, _Heard] = {}

    def apply(self, manifest: wire.Manifest, now: float) -> None:
        if manifest.bye:
            self._hosts.pop(manifest.host, None)
        else:
            self._hosts[manifest.host] = _Heard(manifest, now)

    def changed(self, host: str, skill: wire.SkillManifest, now: float) -> None:
        """A host's answer to a write: its skill as it is now."""
        heard = self._hosts.get(host)
        if heard is None:
            return
        others = [s for s in heard.manifest.skills if s.name != skill.name]
        skills = [skill if s.name == skill.name else s for s in heard.manifest.skills]
        if len(others) == len(skills):
            skills.append(skill)
        self._hosts[host] = _Heard(heard.manifest.model_copy(update={"skills": skills}), now)

    def _live(self, now: float) -> list[wire.Manifest]:
        return [h.manifest for h in self._hosts.values() if now - h.at <= FORGET_AFTER_S]

    def owners(self, skill: str, now: float) -> list[str]:
        return [m.host for m in self._live(now) if any(s.name == skill for s in m.skills)]

    def serving(self, now: float) -> set[str]:
        return {s.name for m in self._live(now) for s in m.skills if s.status in ("ok", "degraded")}

    def rows(self, now: float) -> list[dict[str, Any]]:
        """One row per skill (a skill scaled out over hosts is listed once), by name."""
        seen: dict[str, dict[str, Any]] = {}
        for manifest in self._live(now):
            for skill in manifest.skills:
                seen.setdefault(skill.name, row(manifest.host, skill))
        return [seen[name] for name in sorted(seen)]


def row(host: str, skill: wire.SkillManifest) -> dict[str, Any]:
    """The reference's SkillSummary, plus host, status, error and tools."""
    return {
        "name": skill.name,
        "package": skill.package,
        "version": skill.version,
        "description": skill.description,
        "author": None,
        "enabled": skill.enabled,
        "config_schema": skill.config_schema,
        "data_schema_version": skill.data_schema_version,
        "current_config": dict(skill.config),
        "secret_keys_set": list(skill.secret_keys_set),
        "secret_required_keys": list(skill.secret_required_keys),
        "host": host,
        "status": skill.status,
        "error": skill.error,
        "tools": [t.name for t in skill.tools],
    }


Write = wire.SetSkillEnabled | wire.SetSkillConfig | wire.SetSkillSecret | wire.DeleteSkillSecret


def wire_request(message: proto.SkillsPanelMessage) -> Write | None:
    """The host request for a panel write (None for `get_skills_state`)."""
    if isinstance(message, proto.SetSkillEnabled):
        return wire.SetSkillEnabled(skill=message.skill, enabled=message.enabled)
    if isinstance(message, proto.SetSkillConfig):
        return wire.SetSkillConfig(skill=message.skill, config=message.config)
    if isinstance(message, proto.SetSkillSecret):
        return wire.SetSkillSecret(skill=message.skill, key=message.key, value=message.value)
    if isinstance(message, proto.DeleteSkillSecret):
        return wire.DeleteSkillSecret(skill=message.skill, key=message.key)
    return None


class SkillsPanel:
    def __init__(self, nc: Client, subjects: Subjects, clock: Callable[[], float]) -> None:
        self.nc = nc
        self.subjects = subjects
        self.clock = clock
        self.directory = SkillsDirectory()

    def state(self, persona: str | None) -> proto.Out:
        return proto.skills_state(persona, self.directory.rows(self.clock()))

    async def answer(self, message: proto.SkillsPanelMessage, persona: str | None) -> list[proto.Out]:
        ask = wire_request(message)
        if ask is None:
            return [self.state(persona)]
        skill = ask.skill
        owners = self.directory.owners(skill, self.clock())
        if not owners:
            return [proto.status(f"skill {skill!r} is not served by any skill host"), self.state(persona)]
        failures = []
        for host in owners:  # a skill scaled out is set up alike on each of its hosts
            try:
                changed = await request(self.nc, self.subjects.skill_setup(host, skill), ask)
            except WireError as exc:
                log.warning("skill_write_failed", op=message.type, skill=skill, host=host, error=exc.message)
                failures.append(f"{host}: {exc.message}")
                continue
            self.directory.changed(changed.host, changed.skill, self.clock())
            log.info("skill_written", op=message.type, skill=skill, host=host)
        messages = [self.state(persona)]
        if failures:
            messages.insert(0, proto.status(f"{message.type} for {skill!r} failed: " + "; ".join(failures)))
        return messages
