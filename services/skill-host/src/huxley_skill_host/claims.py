"""One InputClaim's I/O, from the grant to `on_claim_end`.

The core (huxley_skill_host.core) decides when a claim is granted, muted and
ended (exactly once); this carries it out. While granted its mic tap is open
(frames from audio.mic.claim.<holder> go to `on_mic_frame`) and `speaker_source`
plays on audio.out.<holder>.<activity_id>. The session asks the core to end the claim
when its speaker runs out (`natural`) or fails (`error`), or the skill
cancels it (`natural`), through `ask_end`; the core answers with the one
`finish`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from huxley_runtime.logging import get_logger
from huxley_sdk import ClaimEndReason, ClaimHandle, InputClaim
from huxley_skill_host.pacing import FrameChunker, Pacer, send_paced
from huxley_wire.audio import AudioFrame, frames_in, now_us

log = get_logger(component="claim")


class MicTap(Protocol):
    async def close(self) -> None: ...


class ClaimSession:
    def __init__(
        self,
        *,
        skill: str,
        claim: InputClaim,
        effect_id: str | None,
        send: Callable[[AudioFrame], Awaitable[None]],
        release: Callable[[str], Awaitable[None]],
        ask_end: Callable[[ClaimEndReason], Awaitable[None]],
        open_mic: Callable[[Callable[[bytes], Awaitable[None]]], Awaitable[MicTap]],
        lead_ms: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.skill = skill
        self.claim = claim
        self.effect_id = effect_id
        self.send = send
        self.release = release
        self.ask_end = ask_end
        self.open_mic = open_mic
        self.lead_ms = lead_ms
        self.clock = clock
        self.sleep = sleep
        self.activity_id: str | None = None
        self.granted_at: float | None = None
        self.mic_frames = 0
        self._ending = False
        self._ended: asyncio.Future[ClaimEndReason] = asyncio.get_running_loop().create_future()
        self._order = asyncio.Lock()  # state changes apply in arrival order
        self._tasks: set[asyncio.Task[Any]] = set()
        self._mic: MicTap | None = None
        self._speaker: asyncio.Task[None] | None = None
        self._seq = 0

    @property
    def ended(self) -> bool:
        return self._ending

    @property
    def finished(self) -> asyncio.Future[ClaimEndReason]:
        """Resolved with the reason once the claim has ended."""
        return self._ended

    def bind(self, activity_id: str) -> None:
        self.activity_id = activity_id

    def handle(self) -> ClaimHandle:
        async def wait_end() -> ClaimEndReason:
            return await asyncio.shield(self._ended)

        def cancel() -> None:
            if not self._ending:
                self._spawn(self.ask_end(ClaimEndReason.NATURAL))

        return ClaimHandle(_cancel=cancel, _wait_end=wait_end)

    # -- what the core decided -----------------------------------------------------------------
    def grant(self) -> None:
        """Foreground: open the mic, start the speaker (in notice order)."""
        self._spawn(self._ordered(self._grant))

    def mute(self) -> None:
        """Background: close the mic (in notice order)."""
        self._spawn(self._ordered(self._close_mic))

    async def _ordered(self, step: Callable[[], Awaitable[None]]) -> None:
        async with self._order:
            if not self._ending:
                await step()

    async def _grant(self) -> None:
        if self.granted_at is None:
            self.granted_at = self.clock()
            log.info("claim_granted", skill=self.skill, activity_id=self.activity_id, title=self.claim.title)
        if self._mic is None:
            self._mic = await self.open_mic(self._on_mic)
        if self._speaker is None and self.claim.speaker_source is not None:
            self._speaker = self._spawn(self._play_speaker())

    async def _close_mic(self) -> None:
        mic, self._mic = self._mic, None
        if mic is not None:
            await mic.close()

    async def _on_mic(self, pcm: bytes) -> None:
        if self._ending or self._mic is None:
            return
        self.mic_frames += 1
        try:
            await self.claim.on_mic_frame(pcm)
        except Exception:
            log.exception("claim_mic_handler_raised", skill=self.skill, activity_id=self.activity_id)

    async def _play_speaker(self) -> None:
        source = self.claim.speaker_source
        assert source is not None and self.activity_id is not None
        pacer, chunker = Pacer(self.clock(), self.lead_ms), FrameChunker()
        try:
            async for chunk in source:
                await self._paced(chunker.push(chunk), pacer)
            rest = chunker.flush()
            if rest:
                await self._paced([rest], pacer)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("claim_speaker_failed", skill=self.skill, activity_id=self.activity_id)
            await self._frame(b"", eos=True)
            await self.ask_end(ClaimEndReason.ERROR)
            return
        await self._frame(b"", eos=True)
        await self.ask_end(ClaimEndReason.NATURAL)

    async def _paced(self, frames: list[bytes], pacer: Pacer) -> None:
        await send_paced(frames, pacer, clock=self.clock, sleep=self.sleep, send=self._frame)

    async def _frame(self, pcm: bytes, *, eos: bool = False) -> None:
        assert self.activity_id is not None
        await self.send(AudioFrame(stream=self.activity_id, seq=self._seq, ts_us=now_us(), pcm=pcm, eos=eos))
        self._seq += frames_in(pcm)

    # -- the end -------------------------------------------------------------------------
    async def finish(self, reason: ClaimEndReason, *, release: bool) -> None:
        """The claim's one end, as the core decided it (a second call does nothing)."""
        if self._ending:
            return
        self._ending = True
        speaker, self._speaker = self._speaker, None
        if speaker is not None and speaker is not asyncio.current_task():
            speaker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({speaker})
        with contextlib.suppress(Exception):
            await self._close_mic()
        if release and self.activity_id is not None:
            try:
                await self.release(self.activity_id)
            except Exception as exc:
                log.warning(
                    "claim_release_failed", skill=self.skill, activity_id=self.activity_id, error=str(exc)
                )
        self._ended.set_result(reason)
        log.info("claim_ended", skill=self.skill, activity_id=self.activity_id, reason=reason.value)
        if self.claim.on_claim_end is not None:
            try:
                await self.claim.on_claim_end(reason)
            except Exception:
                log.exception("on_claim_end_raised", skill=self.skill, activity_id=self.activity_id)

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
