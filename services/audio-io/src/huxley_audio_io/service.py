"""Audio-io bus adapter (skeleton: the real work lands with the audio-io issue)."""

from __future__ import annotations

from typing import Any

from huxley_runtime.service import Endpoint, Service
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages import audio as m


class AudioService(Service):
    name = "audio-io"
    description = "Microphone, speaker, web client gateway and mixer"

    async def _not_yet(self, request: Any, subject: str) -> Any:
        raise WireError(ErrorCode.UNAVAILABLE, f"{request.op} is not implemented yet")

    def endpoints(self) -> list[Endpoint]:
        ops = (m.Clear, m.SetVolume, m.AudioSnapshotRequest)
        return [Endpoint("rpc", self.subjects.audio_rpc(), {r: self._not_yet for r in ops})]
