"""One InputClaim on COMMS, from the grant to `on_claim_end`.

While focus holds the claim in FOREGROUND its mic tap is open (frames from
audio.mic.claim go to `on_mic_frame`) and `speaker_source` plays on
audio.out.<activity_id>. The claim ends exactly once, whoever ends it:

- the speaker source runs out, or the skill cancels   -> NATURAL (we release)
- focus sends NONE                                     -> the mapped reason
- focus or the bridge drops it before it started      -> the mapped reason
- the host stops                                       -> ERROR
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from huxley_runtime.logging import get_logger
from huxley_sdk import ClaimEndReason, ClaimHandle, InputClaim
from huxley_skill_host.pacing import FrameChunker, Pacer
from huxley_wire.audio import AudioFrame, now_us
from huxley_wire.messages.focus import EndReason, FocusState

log = get_logger(component="claim")

_FROM_FOCUS = {
    EndReason.RELEASED: ClaimEndReason.NATURAL,
    EndReason.STOPPED: ClaimEndReason.NATURAL,
    EndReason.USER_PTT: ClaimEndReason.USER_PTT,
    EndReason.PREEMPTED: ClaimEndReason.PREEMPTED,
    EndReason.DISPLACED: ClaimEndReason.PREEMPTED,
    EndReason.REPLACED: ClaimEndReason.PREEMPTED,
}


def claim_end_reason(reason: EndReason | str | None) -> ClaimEndReason:
    """Focus's EndReason (or a drop/discard reason) as the skill's ClaimEndReason."""
    if isinstance(reason, EndReason):
        return _FROM_FOCUS.get(reason, ClaimEndReason.ERROR)
    if reason in {"user_ptt", "preempted"}:
        return ClaimEndReason(reason)
    if reason == "superseded":
        return ClaimEndReason.PREEMPTED
    return ClaimEndReason.ERROR


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

        return ClaimHandle(
            _cancel=lambda: self.end_soon(ClaimEndReason.NATURAL, release=True), _wait_end=wait_end
        )

    # -- focus ---------------------------------------------------------------------------
    def apply(self, state: FocusState, reason: EndReason | None = None) -> None:
        if state is FocusState.NONE:
            self.end_soon(claim_end_reason(reason), release=False)
        elif state is FocusState.FOREGROUND:
            self._spawn(self._ordered(self._grant))
        else:
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
                for pcm in chunker.push(chunk):
                    await self._paced(pcm, pacer)
            rest = chunker.flush()
            if rest:
                await self._paced(rest, pacer)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("claim_speaker_failed", skill=self.skill, activity_id=self.activity_id)
            await self._frame(b"", eos=True)
            await self.end(ClaimEndReason.ERROR, release=True)
            return
        await self._frame(b"", eos=True)
        await self.end(ClaimEndReason.NATURAL, release=True)

    async def _paced(self, pcm: bytes, pacer: Pacer) -> None:
        delay = pacer.delay_s(self.clock())
        if delay > 0:
            await self.sleep(delay)
        await self._frame(pcm)
        pacer.sent(len(pcm))

    async def _frame(self, pcm: bytes, *, eos: bool = False) -> None:
        assert self.activity_id is not None
        await self.send(AudioFrame(stream=self.activity_id, seq=self._seq, ts_us=now_us(), pcm=pcm, eos=eos))
        self._seq += 1

    # -- the end -------------------------------------------------------------------------
    def end_soon(self, reason: ClaimEndReason, *, release: bool) -> None:
        if not self._ending:
            self._spawn(self.end(reason, release=release))

    async def end(self, reason: ClaimEndReason, *, release: bool) -> None:
        """End the claim (only the first call does anything)."""
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
