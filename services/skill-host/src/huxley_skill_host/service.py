"""Skill-host bus adapter (skeleton: the real work lands with the skill-host issue)."""

from __future__ import annotations

from typing import Any

from huxley_runtime.service import Endpoint, Service
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages import skills as m


class SkillHostService(Service):
    name = "skill-host"
    description = "Runs Huxley skills and serves their tools"

    async def _not_yet(self, request: Any, subject: str) -> Any:
        raise WireError(ErrorCode.UNAVAILABLE, f"{request.op} is not implemented yet")

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint("host", self.subjects.skill_host_rpc(self.instance), {m.DiscardEffect: self._not_yet}),
        ]
