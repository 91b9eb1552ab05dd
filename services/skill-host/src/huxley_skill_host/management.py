"""The client's skills panel, on the host's side (skills.host.<host>):
turning a skill off and on, replacing its config, setting and deleting its
secrets; and what the manifest says of each skill for the panel.

- Off: stop answering on skills.tool.<skill>, teardown, status `disabled`.
  On: a fresh instance, setup, serve again (as at start).
- Config: replaces the persona's block (as the reference's "Save" does),
  then `reconfigure(ctx)`. Keys the skill's `config_schema` marks
  `format: secret` are refused here: they go to the secrets file.
- Secrets: written with the host's secrets file (0600); the answer and the
  manifest carry key names only.

The choices (enabled, config) persist in <persona data>/skills-admin/<skill>.json
(0600, replaced atomically), so they survive a restart of the host.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from huxley_skill_host.loader import SkillLoadError, installed, load_skill
from huxley_skill_host.secret_file import FileSecrets
from huxley_skill_host.slot import SkillSlot
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages import skills as wire

if TYPE_CHECKING:
    from huxley_skill_host.service import SkillHostService

ENABLE_WAIT_S = 5.0  # an answer waits this long for setup; the manifest tells the rest


class SkillAdmin:
    def __init__(self, host: SkillHostService) -> None:
        self.host = host

    # -- what is remembered ------------------------------------------------------------
    def _path(self, skill: str) -> Path:
        return self.host.data_dir / "skills-admin" / f"{skill}.json"

    def _read(self, skill: str) -> dict[str, Any]:
        try:
            data = json.loads(self._path(skill).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            self.host.log.warning("skill_admin_unreadable", skill=skill, error=str(exc))
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, skill: str, data: dict[str, Any]) -> None:
        path = self._path(skill)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2, sort_keys=True)
        os.replace(temporary, path)

    def enabled(self, skill: str) -> bool:
        return self._read(skill).get("enabled", True) is not False

    def config(self, skill: str, language: str) -> dict[str, Any]:
        """The skill's config: the panel's if one was saved, else the persona's."""
        saved = self._read(skill).get("config")
        if isinstance(saved, dict):
            return dict(saved)
        assert self.host.persona is not None
        return self.host.persona.skill_config(skill, language)

    # -- what the manifest says -------------------------------------------------------
    def describe(self, slot: SkillSlot) -> wire.SkillManifest:
        schema = _schema(slot)
        secret_required = _secret_keys(schema)
        secrets_set = self._secret_names(slot.name)
        hidden = set(secret_required) | set(secrets_set)
        config = {k: v for k, v in self.config(slot.name, self.host.language).items() if k not in hidden}
        package, version, description = _package(slot.name)
        return slot.manifest().model_copy(
            update={
                "enabled": self.enabled(slot.name),
                "package": package,
                "version": version,
                "description": description,
                "config_schema": schema,
                "data_schema_version": int(getattr(slot.skill, "data_schema_version", 1) or 1),
                "config": config,
                "secret_keys_set": secrets_set,
                "secret_required_keys": secret_required,
            }
        )

    def _secret_names(self, skill: str) -> list[str]:
        try:
            data = json.loads(FileSecrets.for_skill(self.host.data_dir, skill).path.read_text("utf-8"))
        except (OSError, ValueError):
            return []
        return sorted(k for k in data if isinstance(k, str)) if isinstance(data, dict) else []

    # -- the requests -----------------------------------------------------------------
    def _slot(self, skill: str, subject: str) -> SkillSlot:
        if subject.rsplit(".", 1)[-1] != skill:
            raise WireError(ErrorCode.INVALID, f"skill {skill!r} is not the one {subject} serves")
        slot = self.host.slots.get(skill)
        if slot is None:
            raise WireError(ErrorCode.NOT_FOUND, f"skill {skill!r} does not run on {self.host.holder}")
        return slot

    def _changed(self, slot: SkillSlot) -> wire.SkillChanged:
        return wire.SkillChanged(host=self.host.holder, skill=self.describe(slot))

    async def set_enabled(self, request: wire.SetSkillEnabled, subject: str) -> wire.SkillChanged:
        slot = self._slot(request.skill, subject)
        self._write(slot.name, {**self._read(slot.name), "enabled": request.enabled})
        if not request.enabled and slot.status != "disabled":
            await self.host.unserve(f"tool-{slot.name}")
            await self.host.skills.tear_down(slot)
            slot.status, slot.error, slot.ctx = "disabled", None, None
            self.host.log.info("skill_disabled", skill=slot.name)
        elif request.enabled and slot.status in ("disabled", "failed"):
            try:
                slot.skill = load_skill(slot.name, installed())  # a fresh instance, as at start
            except SkillLoadError as exc:
                slot.fail(str(exc))
            else:
                slot.status, slot.error = "starting", None
                task = self.host.start_work(self.host.skills.bring_up(slot), name=f"setup:{slot.name}")
                await asyncio.wait({task}, timeout=ENABLE_WAIT_S)
            self.host.log.info("skill_enabled", skill=slot.name, status=slot.status)
        await self.host.publish_manifest()
        return self._changed(slot)

    async def set_config(self, request: wire.SetSkillConfig, subject: str) -> wire.SkillChanged:
        slot = self._slot(request.skill, subject)
        secret = sorted(set(request.config) & set(_secret_keys(_schema(slot))))
        if secret:
            raise WireError(ErrorCode.INVALID, f"{', '.join(secret)}: secrets go through set_skill_secret")
        self._write(slot.name, {**self._read(slot.name), "config": request.config})
        self.host.log.info("skill_config_set", skill=slot.name, keys=sorted(request.config))
        await self._reconfigure(slot)
        return self._changed(slot)

    async def set_secret(self, request: wire.SetSkillSecret, subject: str) -> wire.SkillChanged:
        slot = self._slot(request.skill, subject)
        await FileSecrets.for_skill(self.host.data_dir, slot.name).set(request.key, request.value)
        self.host.log.info("skill_secret_set", skill=slot.name, key=request.key)  # never the value
        await self._reconfigure(slot)
        return self._changed(slot)

    async def delete_secret(self, request: wire.DeleteSkillSecret, subject: str) -> wire.SkillChanged:
        slot = self._slot(request.skill, subject)
        await FileSecrets.for_skill(self.host.data_dir, slot.name).delete(request.key)
        self.host.log.info("skill_secret_deleted", skill=slot.name, key=request.key)
        await self._reconfigure(slot)
        return self._changed(slot)

    async def _reconfigure(self, slot: SkillSlot) -> None:
        if slot.serving:
            await self.host.skills.reconfigure_all(self.host.language)
        await self.host.publish_manifest()


def _schema(slot: SkillSlot) -> dict[str, Any] | None:
    schema = getattr(type(slot.skill), "config_schema", None) if slot.skill is not None else None
    return schema if isinstance(schema, dict) else None


def _secret_keys(schema: dict[str, Any] | None) -> list[str]:
    """Top-level properties the schema marks `format: secret` (as the reference reads them)."""
    properties = schema.get("properties") if schema else None
    if not isinstance(properties, dict):
        return []
    return sorted(k for k, v in properties.items() if isinstance(v, dict) and v.get("format") == "secret")


def _package(skill: str) -> tuple[str | None, str | None, str | None]:
    entry = installed().get(skill)
    dist = getattr(entry, "dist", None) if entry is not None else None
    if dist is None:
        return None, None, None
    return dist.name, dist.version, dist.metadata.get("Summary")
