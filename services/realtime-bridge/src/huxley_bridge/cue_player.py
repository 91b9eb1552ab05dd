"""The reconnect cue on the speaker: a short DIALOG activity of its own
(interface `reconnect-cue`), so it plays over ducked content; its frames
end with end-of-stream and the activity is released once audio-io reports
it drained (or after `CUE_DRAIN_TIMEOUT_S`, or at once if focus took it).
Its `played` reports and focus notices are the cue's, not the turns'.
"""

from __future__ import annotations

import asyncio
import contextlib

from nats.aio.client import Client

from huxley_bridge.cue import reconnect_cue
from huxley_runtime.focus_client import FocusClient
from huxley_runtime.logging import get_logger
from huxley_wire.audio import AudioFrame, encode_frame, frames_of, now_us
from huxley_wire.errors import WireError
from huxley_wire.messages import audio as am
from huxley_wire.messages.focus import ActivityKind, ActivityMeta, Channel, FocusChange, FocusState
from huxley_wire.permissions import BRIDGE_HOLDER
from huxley_wire.subjects import Subjects

log = get_logger(component="adapter")

CUE_DRAIN_TIMEOUT_S = 3.0


class CuePlayer:
    def __init__(self, nc: Client, subjects: Subjects, focus: FocusClient) -> None:
        self.nc = nc
        self.subjects = subjects
        self.focus = focus
        self._drained: dict[str, asyncio.Future[None]] = {}  # cue streams waiting for `drained`
        self._activities: set[str] = set()

    async def play(self) -> None:
        meta = ActivityMeta(kind=ActivityKind.OTHER, label="reconnect-cue")
        try:
            granted = await self.focus.acquire(Channel.DIALOG, "reconnect-cue", meta=meta)
        except WireError as exc:
            log.info("cue_not_played", error=exc.message)
            return
        stream = granted.activity_id
        self._activities.add(stream)
        drained: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._drained[stream] = drained
        try:
            frames = frames_of(reconnect_cue())
            for seq, pcm in enumerate(frames):
                frame = AudioFrame(stream, seq, now_us(), pcm, seq == len(frames) - 1)
                await self.nc.publish(self.subjects.audio_out_of(BRIDGE_HOLDER, stream), encode_frame(frame))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(drained, CUE_DRAIN_TIMEOUT_S)
        finally:
            self._drained.pop(stream, None)
            with contextlib.suppress(WireError):
                await self.focus.release(stream)
            self._activities.discard(stream)

    def took_played(self, event: am.PlayedEvent) -> bool:
        """A `played` report for a cue stream (True: it is the cue's, not a turn's)."""
        waiter = self._drained.get(event.stream_id)
        if waiter is None:
            return False
        if event.drained and not waiter.done():
            waiter.set_result(None)
        return True

    def took_focus(self, change: FocusChange) -> bool:
        """A focus notice for a cue activity (True: it is the cue's)."""
        if change.activity_id not in self._activities:
            return False
        waiter = self._drained.get(change.activity_id)
        if change.state is FocusState.NONE and waiter is not None and not waiter.done():
            waiter.set_result(None)  # the cue was stopped (a PTT): don't wait for it
        return True
