"""Focus bus adapter (skeleton: the real work lands with the focus issue)."""

from __future__ import annotations

from typing import Any

from huxley_runtime.service import Endpoint, Service
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages import focus as m


class FocusService(Service):
    name = "focus"
    description = "Focus arbiter (channels, activities, leases) and inject scheduler"

    async def _not_yet(self, request: Any, subject: str) -> Any:
        raise WireError(ErrorCode.UNAVAILABLE, f"{request.op} is not implemented yet")

    def endpoints(self) -> list[Endpoint]:
        ops = (
            m.Acquire,
            m.Release,
            m.Renew,
            m.Interrupt,
            m.StopForeground,
            m.StopAll,
            m.StopChannel,
            m.Inject,
            m.TurnEnd,
            m.SnapshotRequest,
        )
        return [Endpoint("rpc", self.subjects.focus_rpc(), {r: self._not_yet for r in ops})]
