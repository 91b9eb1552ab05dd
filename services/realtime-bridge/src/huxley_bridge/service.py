"""The realtime-bridge service: the bus side of the bridge.

It loads the persona, subscribes to what the bridge listens to (PTT, the
assistant mic, what audio-io played, the client's session controls, the
skill-hosts' manifests), serves `bridge.rpc` (completion, snapshot) and
`bridge.inject` (run_inject, focus's only) and hands all of it to `BridgeAdapter`, which runs the turns.
A message that does not decode is logged and dropped; it never reaches the
turn machinery.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nats.aio.msg import Msg
from pydantic import BaseModel

from huxley_bridge import events as e
from huxley_bridge.adapter import BridgeAdapter
from huxley_bridge.settings import BridgeSettings
from huxley_runtime.bus import settle
from huxley_runtime.inline_sub import subscribe_inline
from huxley_runtime.persona import load_persona
from huxley_runtime.service import Endpoint, Service
from huxley_wire.audio import decode_frame
from huxley_wire.codec import Ok, decode
from huxley_wire.errors import WireError
from huxley_wire.messages import audio as am
from huxley_wire.messages import bridge as m
from huxley_wire.messages import skills as sm

SIMULATED_MESSAGE = "Offline mode: no OPENAI_API_KEY, the voice is the local scripted simulator, not OpenAI."


def mode_of(offline: bool, simulated: bool) -> str:
    """Health's one-word answer to "what voice is this"."""
    if not offline:
        return "openai"
    return "offline (simulator)" if simulated else "offline (no voice)"


class BridgeService(Service):
    name = "realtime-bridge"
    description = "Turns with the OpenAI Realtime model"
    settings_class = BridgeSettings

    adapter: BridgeAdapter | None = None

    async def on_start(self) -> None:
        assert isinstance(self.settings, BridgeSettings)
        persona = load_persona(self.settings.persona, self.settings.personas_dir)
        self.adapter = adapter = BridgeAdapter(self.nc, self.subjects, self.settings, persona, self.spawn)
        s = self.subjects
        self._subs = [
            # Presses and mic frames inline in the bus reader, in the order they came: no Msg,
            # queue and task hop for each of 50 frames/s, and a press's start still comes first.
            await subscribe_inline(self.nc, s.audio_ptt(), self._inline_control(am.PttEvent, adapter.on_ptt)),
            await subscribe_inline(self.nc, s.audio_mic_assistant(), self._on_mic),
            await self.nc.subscribe(s.audio_played(), cb=self._on_played),
            await self.nc.subscribe(
                s.audio_event("control"), cb=self._control(am.ClientControl, adapter.on_control)
            ),
            await self.nc.subscribe(s.skills_manifest(), cb=self._control(sm.Manifest, adapter.on_manifest)),
        ]
        await settle(self.nc)
        await adapter.start()
        if adapter.endpoint.offline_message:
            self.log.warning("bridge_offline", message=adapter.endpoint.offline_message)
        elif adapter.endpoint.simulated:
            self.log.warning("bridge_simulated", message=SIMULATED_MESSAGE, where=adapter.endpoint.where)

    async def start(self) -> None:
        await super().start()
        # Only now may the bridge say ready: focus fires a queued inject at once.
        self._adapter().rpc_served()

    async def on_stop(self) -> None:
        for sub in getattr(self, "_subs", []):
            try:
                await sub.unsubscribe()
            except Exception as exc:  # the connection may already be closing
                self.log.debug("unsubscribe_failed", error=str(exc))
        if self.adapter is not None:
            await self.adapter.stop()

    def _control[M: BaseModel](self, model: type[M], handle: Callable[[M], None]) -> Any:
        inline = self._inline_control(model, handle)

        async def callback(msg: Msg) -> None:
            inline(msg.subject, msg.data)

        return callback

    def _inline_control[M: BaseModel](
        self, model: type[M], handle: Callable[[M], None]
    ) -> Callable[[str, bytes], None]:
        def handler(subject: str, data: bytes) -> None:
            try:
                message = decode(data, model)
            except WireError as exc:
                self.log.warning("message_refused", subject=subject, code=str(exc.code), error=exc.message)
                return
            handle(message)

        return handler

    async def _on_played(self, msg: Msg) -> None:
        try:
            reports = am.decode_played(msg.data)  # a PlayedBatch or one stream's PlayedEvent
        except WireError as exc:
            self.log.warning("message_refused", subject=msg.subject, code=str(exc.code), error=exc.message)
            return
        if self.adapter is not None:
            for report in reports:
                self.adapter.on_played(report)

    def _on_mic(self, subject: str, data: bytes) -> None:
        try:
            frame = decode_frame(data)
        except WireError as exc:
            self.log.warning("mic_frame_refused", code=str(exc.code), error=exc.message)
            return
        if self.adapter is not None:
            self.adapter.put(e.MicAudio(frame.pcm, press_id=frame.stream))

    # -- bridge.rpc ----------------------------------------------------------------------------------
    def _adapter(self) -> BridgeAdapter:
        if self.adapter is None:
            raise RuntimeError("the bridge is not started")
        return self.adapter

    async def _run_inject(self, request: m.RunInject, subject: str) -> m.InjectAccepted:
        return await self._adapter().run_inject(
            request.inject_id, request.prompt, request.activity_id, request.priority
        )

    async def _completion(self, request: m.Completion, subject: str) -> Ok:
        self._adapter().put(
            e.CompletionRequested(request.prompt, request.silence_ms, request.skill, request.effect_id)
        )
        return Ok()

    async def _snapshot(self, request: m.BridgeSnapshotRequest, subject: str) -> m.BridgeSnapshot:
        return self._adapter().snapshot()

    def endpoints(self) -> list[Endpoint]:
        handlers: dict[Any, Any] = {m.Completion: self._completion, m.BridgeSnapshotRequest: self._snapshot}
        injects: dict[Any, Any] = {m.RunInject: self._run_inject}
        # run_inject on a subject of its own, which only focus may publish.
        # Concurrent: a run_inject waits for the turn loop; others must not wait behind it.
        return [
            Endpoint("rpc", self.subjects.bridge_rpc(), handlers, concurrent=True),
            Endpoint("inject", self.subjects.bridge_inject(), injects, concurrent=True),
        ]

    def health(self) -> tuple[str, dict[str, Any]]:
        adapter = self._adapter()
        snap = adapter.snapshot()
        offline = adapter.lifecycle.offline
        detail: dict[str, Any] = {
            "wired": True,
            "model": snap.model,
            "where": adapter.endpoint.where,
            # One meaning: offline mode = no OpenAI key; the voice is the simulator (or none).
            "offline": offline,
            "simulated": adapter.endpoint.simulated,
            "mode": mode_of(offline, adapter.endpoint.simulated),
            "connected": snap.connected,
            "state": snap.state,
            "phase": snap.phase,
            "tools": len(snap.tools),
        }
        if adapter.endpoint.offline_message:
            detail["message"] = adapter.endpoint.offline_message
        elif adapter.endpoint.simulated:
            detail["message"] = SIMULATED_MESSAGE
        problems = adapter.problems()
        if problems:
            detail["reason"] = "; ".join(problems)
        # No model configured is a configuration, not a fault: the service serves its contract.
        unconfigured = adapter.lifecycle.state == "offline"
        status = "ok" if (snap.connected or unconfigured) and not problems else "degraded"
        return status, detail
