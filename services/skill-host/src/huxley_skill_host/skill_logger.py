"""`ctx.logger`: structlog bound to the skill.

Events are named `<skill>.<event>` (published skills that already prefix
their events are left alone) and carry the current turn id, which the tool
handler binds in a context variable from the call's `turn_id`; tasks a call
starts inherit it.
"""

from __future__ import annotations

from typing import Any

from huxley_runtime.logging import get_logger

# Keys structlog uses for itself; a skill field with one of these names is renamed.
_RESERVED = frozenset({"event", "level", "ts", "service", "site", "skill", "exc_info"})


class BusSkillLogger:
    def __init__(self, skill: str) -> None:
        self.skill = skill
        self._log = get_logger(skill=skill)

    def _name(self, event: str) -> str:
        return event if event.startswith(f"{self.skill}.") else f"{self.skill}.{event}"

    @staticmethod
    def _fields(fields: dict[str, Any]) -> dict[str, Any]:
        return {(f"{key}_" if key in _RESERVED else key): value for key, value in fields.items()}

    async def adebug(self, event: str, **kwargs: Any) -> None:
        self._log.debug(self._name(event), **self._fields(kwargs))

    async def ainfo(self, event: str, **kwargs: Any) -> None:
        self._log.info(self._name(event), **self._fields(kwargs))

    async def awarning(self, event: str, **kwargs: Any) -> None:
        self._log.warning(self._name(event), **self._fields(kwargs))

    async def aerror(self, event: str, **kwargs: Any) -> None:
        self._log.error(self._name(event), **self._fields(kwargs))

    async def aexception(self, event: str, **kwargs: Any) -> None:
        self._log.exception(self._name(event), **self._fields(kwargs))
