"""The pump of one AudioStream: the skill's iterator turned into frames.

The core (huxley_skill_host.core) decides when a pump starts and stops;
this runs it. Each `start()` calls the stream's factory anew and sends 20 ms
frames on audio.out.<holder>.<activity_id> in real time with a small lead
(the frames due at once in one message), `seq` continuing across pauses;
`stop()` cancels it once (a second cancel could cut the skill's `finally`,
its position save, short). When the iterator runs out or raises an
end-of-stream frame is sent. Either way the pump reports how it finished
(`ended`, `failed`, `cancelled`) to `done`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

from huxley_runtime.logging import get_logger
from huxley_sdk import AudioStream
from huxley_skill_host.core import PumpResult
from huxley_skill_host.pacing import FrameChunker, Pacer, send_paced
from huxley_wire.audio import AudioFrame, frames_in, now_us

log = get_logger(component="stream")


async def close_iterator(iterator: Any) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


class StreamPump:
    def __init__(
        self,
        *,
        activity_id: str,
        skill: str,
        effect_id: str,
        stream: AudioStream,
        send: Callable[[AudioFrame], Awaitable[None]],
        done: Callable[[str, PumpResult], None],
        spawn: Callable[[Coroutine[Any, Any, None], str], asyncio.Task[Any]],
        lead_ms: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.activity_id = activity_id
        self.skill = skill
        self.effect_id = effect_id
        self.stream = stream
        self.send = send
        self.done = done
        self.spawn = spawn
        self.lead_ms = lead_ms
        self.clock = clock
        self.sleep = sleep
        self.seq = 0
        self.starts = 0  # how many times the factory was called
        self.error: str | None = None
        self._task: asyncio.Task[Any] | None = None
        self._stopping = False

    def start(self) -> None:
        self._stopping = False
        self._task = self.spawn(self._run(), f"pump:{self.activity_id}")

    def stop(self) -> None:
        if self._task is not None and not self._task.done() and not self._stopping:
            self._stopping = True
            self._task.cancel()

    async def _run(self) -> None:
        result: PumpResult = "cancelled"
        try:
            try:
                await self._play_once()
                result = "ended"
            except Exception as exc:
                result, self.error = "failed", f"{type(exc).__name__}: {exc}"
                log.error("stream_failed", skill=self.skill, activity_id=self.activity_id, error=self.error)
            await self._send_frame(b"", eos=True)
        finally:
            self.done(self.activity_id, result)

    async def _play_once(self) -> None:
        self.starts += 1
        iterator: AsyncIterator[bytes] = self.stream.factory()
        pacer = Pacer(self.clock(), self.lead_ms)
        chunker = FrameChunker()
        try:
            async for chunk in iterator:
                await self._paced(chunker.push(chunk), pacer)
            rest = chunker.flush()
            if rest:
                await self._paced([rest], pacer)
        finally:
            await close_iterator(iterator)

    async def _paced(self, frames: list[bytes], pacer: Pacer) -> None:
        await send_paced(
            frames,
            pacer,
            clock=self.clock,
            sleep=self.sleep,
            send=self._send_frame,
            before_send=self._still_on,
        )

    def _still_on(self) -> None:
        if self._stopping:
            # Paused or stopped since the last await: not one more frame.
            raise asyncio.CancelledError

    async def _send_frame(self, pcm: bytes, *, eos: bool = False) -> None:
        frame = AudioFrame(stream=self.activity_id, seq=self.seq, ts_us=now_us(), pcm=pcm, eos=eos)
        self.seq += frames_in(pcm)
        await self.send(frame)
