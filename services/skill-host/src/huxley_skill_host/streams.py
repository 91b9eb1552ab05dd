"""Playing one AudioStream for one focus activity.

The player follows focus: FOREGROUND (or MAY_DUCK: audio-io applies the
gain) plays, MUST_PAUSE closes the skill's iterator — its `finally` saves
the position — and waits, FOREGROUND again calls the factory anew, NONE
stops for good. Frames are 20 ms of PCM sent on audio.out.<activity_id> in
real time with a small lead; their sequence numbers continue across pauses.

`run()` returns how the stream finished: `ended` (the iterator ran out; an
end-of-stream frame has been sent), `failed` (the factory or iterator
raised; an end-of-stream frame has been sent) or `stopped` (NONE, or the
host is stopping).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal

from huxley_runtime.logging import get_logger
from huxley_sdk import AudioStream
from huxley_skill_host.pacing import FrameChunker, Pacer
from huxley_wire.audio import AudioFrame, now_us
from huxley_wire.messages.focus import Behavior, FocusState

Want = Literal["play", "pause", "stop"]
Outcome = Literal["ended", "failed", "stopped"]

log = get_logger(component="stream")


def wanted(state: FocusState, behavior: Behavior) -> Want:
    if state is FocusState.NONE:
        return "stop"
    if state is FocusState.FOREGROUND or behavior is Behavior.MAY_DUCK:
        return "play"
    return "pause"


async def close_iterator(iterator: Any) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


class StreamPlayer:
    def __init__(
        self,
        *,
        activity_id: str,
        skill: str,
        effect_id: str,
        stream: AudioStream,
        send: Callable[[AudioFrame], Awaitable[None]],
        lead_ms: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.activity_id = activity_id
        self.skill = skill
        self.effect_id = effect_id
        self.stream = stream
        self.send = send
        self.lead_ms = lead_ms
        self.clock = clock
        self.sleep = sleep
        self.want: Want = "pause"
        self.seq = 0
        self.starts = 0  # how many times the factory was called
        self.error: str | None = None
        self._changed = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        self._pump_cancelled = False

    def apply(self, state: FocusState, behavior: Behavior) -> None:
        """A new focus state (synchronous, so notifications apply in order)."""
        self.set_want(wanted(state, behavior))

    def set_want(self, want: Want) -> None:
        if self.want == "stop":
            return  # stopping is final
        self.want = want
        self._changed.set()
        # Interrupt a running pump once; a second cancel could cut the skill's
        # `finally` (the position save) short.
        if want != "play" and self._pump is not None and not self._pump.done() and not self._pump_cancelled:
            self._pump_cancelled = True
            self._pump.cancel()

    async def run(self) -> Outcome:
        while True:
            while self.want == "pause":
                self._changed.clear()
                await self._changed.wait()
            if self.want == "stop":
                return "stopped"
            self._pump_cancelled = False
            self._pump = asyncio.get_running_loop().create_task(
                self._play_once(), name=f"pump:{self.activity_id}"
            )
            try:
                await asyncio.wait({self._pump})
            except asyncio.CancelledError:
                self._pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait({self._pump})
                raise
            if self._pump.cancelled():
                continue  # paused or stopped: the loop decides
            failure = self._pump.exception()
            if failure is not None:
                self.error = f"{type(failure).__name__}: {failure}"
                log.error("stream_failed", skill=self.skill, activity_id=self.activity_id, error=self.error)
                await self._send_frame(b"", eos=True)
                return "failed"
            await self._send_frame(b"", eos=True)
            return "ended"

    async def _play_once(self) -> None:
        self.starts += 1
        iterator: AsyncIterator[bytes] = self.stream.factory()
        pacer = Pacer(self.clock(), self.lead_ms)
        chunker = FrameChunker()
        try:
            async for chunk in iterator:
                for pcm in chunker.push(chunk):
                    await self._paced(pcm, pacer)
            rest = chunker.flush()
            if rest:
                await self._paced(rest, pacer)
        finally:
            await close_iterator(iterator)

    async def _paced(self, pcm: bytes, pacer: Pacer) -> None:
        delay = pacer.delay_s(self.clock())
        if delay > 0:
            await self.sleep(delay)
        if self._pump_cancelled:
            # Paused or stopped since the last await: not one more frame.
            raise asyncio.CancelledError
        await self._send_frame(pcm)
        pacer.sent(len(pcm))

    async def _send_frame(self, pcm: bytes, *, eos: bool = False) -> None:
        frame = AudioFrame(stream=self.activity_id, seq=self.seq, ts_us=now_us(), pcm=pcm, eos=eos)
        self.seq += 1
        await self.send(frame)
