"""Bridge bus adapter (skeleton: the real work lands with the bridge issue)."""

from __future__ import annotations

from typing import Any

from huxley_runtime.service import Endpoint, Service
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages import bridge as m


class BridgeService(Service):
    name = "realtime-bridge"
    description = "Turns with the OpenAI Realtime model"

    async def _not_yet(self, request: Any, subject: str) -> Any:
        raise WireError(ErrorCode.UNAVAILABLE, f"{request.op} is not implemented yet")

    def endpoints(self) -> list[Endpoint]:
        ops = (m.RunInject, m.Completion, m.BridgeSnapshotRequest)
        return [Endpoint("rpc", self.subjects.bridge_rpc(), {r: self._not_yet for r in ops})]
