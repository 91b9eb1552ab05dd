"""Bridge bus adapter (phase 1: a skeleton).

The turn coordinator (huxley_bridge.coordinator), the session lifecycle
(huxley_bridge.lifecycle) and the model-session wrapper (huxley_bridge.model)
are built and tested; wiring them to focus, skill-host and audio-io over the
bus is phase 2. Until then every request answers `unavailable`, and health
says so (`wired: false`) together with where the model would be reached.
"""

from __future__ import annotations

from typing import Any

from huxley_bridge.model import ModelEndpoint
from huxley_bridge.settings import BridgeSettings
from huxley_runtime.service import Endpoint, Service
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages import bridge as m


class BridgeService(Service):
    name = "realtime-bridge"
    description = "Turns with the OpenAI Realtime model"
    settings_class = BridgeSettings

    async def _not_yet(self, request: Any, subject: str) -> Any:
        raise WireError(ErrorCode.UNAVAILABLE, f"{request.op} is not wired to the bus yet (bridge phase 2)")

    def health(self) -> tuple[str, dict[str, Any]]:
        assert isinstance(self.settings, BridgeSettings)
        endpoint = ModelEndpoint.from_settings(self.settings)
        detail: dict[str, Any] = {
            "wired": False,
            "model": endpoint.model,
            "where": endpoint.where,
            "offline": endpoint.offline_message is not None,
        }
        if endpoint.offline_message:
            detail["message"] = endpoint.offline_message
        # "ok": the skeleton serves its contract (`huxley status` counts it up); the
        # detail tells that turns are not wired yet.
        return "ok", detail

    def endpoints(self) -> list[Endpoint]:
        # One subject, the ops of huxley_wire.messages.bridge: run_inject, completion, snapshot.
        ops = (m.RunInject, m.Completion, m.BridgeSnapshotRequest)
        return [Endpoint("rpc", self.subjects.bridge_rpc(), {r: self._not_yet for r in ops})]
