"""Carrying out the core's commands: stream pumps, claim sessions, releases
and completion turns on the bus.

`dispatch` performs a list of commands at once — what only touches local
objects inline (so focus notices keep their order), the rest as tasks of the
host; `perform` awaits them one by one, for a caller that must wait (a
discard, a patience hook, the host stopping).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from nats.aio.msg import Msg

from huxley_runtime.rpc import request_with_retry
from huxley_sdk import AudioStream, ClaimBusyError, ClaimEndReason, ClaimHandle, InputClaim
from huxley_skill_host import commands as c
from huxley_skill_host.claims import ClaimSession, MicTap
from huxley_skill_host.core import HostCore, PumpResult
from huxley_skill_host.streams import StreamPump
from huxley_wire.audio import AudioFrame, decode_frame, encode_frame
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages import focus as f
from huxley_wire.messages.bridge import Completion

if TYPE_CHECKING:
    from huxley_skill_host.service import SkillHostService


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class Playback:
    def __init__(self, host: SkillHostService, core: HostCore) -> None:
        self.host = host
        self.core = core
        self.settings = host.settings
        self.log = host.log
        self.pumps: dict[str, StreamPump] = {}  # by activity id, until its last steps are done
        self.sessions: dict[int, ClaimSession] = {}  # by claim id, until it ended
        self._drained: dict[str, asyncio.Future[None]] = {}

    # -- running commands ---------------------------------------------------------------------
    def dispatch(self, commands: list[c.Command]) -> None:
        for command in commands:
            later = self._step(command)
            if later is not None:
                # A stream's last steps and a claim's end get the grace period at
                # stop (a skill saves its place, hears `on_claim_end`).
                graceful = isinstance(command, c.StreamOver | c.EndClaim)
                self.host.start_work(later, name=type(command).__name__, graceful=graceful)

    async def perform(self, commands: list[c.Command]) -> None:
        for command in commands:
            later = self._step(command)
            if later is not None:
                await later

    def _step(self, command: c.Command) -> Coroutine[Any, Any, None] | None:
        """Do the local part of a command now; return the part that waits."""
        match command:
            case c.StartStream(activity_id, held):
                self._new_pump(activity_id, held.skill, held.effect_id, held.effect)
            case c.StartPump(activity_id):
                self.pumps[activity_id].start()
            case c.StopPump(activity_id):
                self.pumps[activity_id].stop()
            case c.StreamOver():
                return self._stream_over(command)
            case c.RunPatienceHook(activity_id, held):
                return self._patience_hook(activity_id, held.skill, held.effect)
            case c.GrantClaim(claim):
                self._session(claim).grant()
            case c.MuteClaim(claim):
                self._session(claim).mute()
            case c.EndClaim(claim, reason, release):
                session = self.sessions.pop(claim.claim_id, None) or self._make_session(claim)
                return session.finish(reason, release=release)
            case c.Release(activity_id, reason):
                return self.release(activity_id, reason)
            case c.EffectDropped(held, reason, expired):
                if expired:
                    self.log.warning("effect_expired", skill=held.skill, effect_id=held.effect_id)
                self.log.info("effect_dropped", skill=held.skill, effect_id=held.effect_id, reason=reason)
            case c.UnknownEffect(effect_id, reason, via):
                event = "effect_dropped_unknown" if via == "effect_dropped" else "discard_unknown"
                self.log.info(event, effect_id=effect_id, reason=reason)
            case c.ForeignEffect(activity_id, effect_id):
                self.log.warning("focus_unknown_effect", activity_id=activity_id, effect_id=effect_id)
        return None

    # -- streams ------------------------------------------------------------------------------
    def _new_pump(self, activity: str, skill: str, effect_id: str, stream: AudioStream | InputClaim) -> None:
        assert isinstance(stream, AudioStream)
        self.pumps[activity] = StreamPump(
            activity_id=activity,
            skill=skill,
            effect_id=effect_id,
            stream=stream,
            send=self.send_frame,
            done=self._pump_done,
            spawn=lambda coro, name: self.host.start_work(coro, name=name, graceful=True),
            lead_ms=self.settings.stream_lead_ms,
        )
        self._drained[activity] = asyncio.get_running_loop().create_future()
        self.log.info("stream_started", skill=skill, activity_id=activity, label=stream.label)

    def _pump_done(self, activity: str, result: PumpResult) -> None:
        self.dispatch(self.core.pump_done(activity, result))

    async def _stream_over(self, over: c.StreamOver) -> None:
        activity, held = over.activity_id, over.held
        try:
            self.log.info("stream_finished", skill=held.skill, activity_id=activity, outcome=over.outcome)
            if over.outcome == "ended":
                await self._wait_drained(activity)
                await self.release(activity, f.EndReason.RELEASED)
                assert isinstance(held.effect, AudioStream)
                if held.effect.on_complete_prompt:
                    await self._request_completion(held.skill, held.effect_id, held.effect)
            elif over.outcome == "failed":
                await self.release(activity, f.EndReason.ERROR)
            # stopped: focus sent NONE or forgot it (nothing to release), or
            # the host is stopping (it releases everything).
        finally:
            self.pumps.pop(activity, None)
            self._drained.pop(activity, None)

    def drained(self, stream_id: str) -> None:
        """audio-io played a stream out."""
        future = self._drained.get(stream_id)
        if future is not None and not future.done():
            future.set_result(None)

    async def _wait_drained(self, activity: str) -> None:
        future = self._drained.get(activity)
        if future is None or self.settings.drain_timeout_s <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(future), self.settings.drain_timeout_s)

    async def _request_completion(self, skill: str, effect_id: str, stream: AudioStream) -> None:
        message = Completion(
            prompt=stream.on_complete_prompt or "",
            silence_ms=max(0, min(10_000, int(stream.completion_silence_ms))),
            skill=skill,
            effect_id=effect_id,
        )
        try:
            await request_with_retry(
                self.host.nc, self.host.subjects.bridge_rpc(), message, timeout=2.0, deadline_s=30
            )
            self.log.info("completion_requested", skill=skill, effect_id=effect_id)
        except WireError as exc:
            self.log.error("completion_failed", skill=skill, effect_id=effect_id, error=exc.message)

    async def _patience_hook(self, activity: str, skill: str, stream: AudioStream | InputClaim) -> None:
        assert isinstance(stream, AudioStream) and stream.on_patience_expired is not None
        timeout = self.settings.patience_hook_timeout_s
        try:
            await asyncio.wait_for(stream.on_patience_expired(), timeout)
            self.log.info("patience_hook_ran", skill=skill, activity_id=activity)
        except TimeoutError:
            self.log.warning("patience_hook_timed_out", skill=skill, after_s=timeout)
        except Exception as exc:
            self.log.error("patience_hook_raised", skill=skill, error=describe(exc), exc_info=exc)

    async def send_frame(self, frame: AudioFrame) -> None:
        subject = self.host.subjects.audio_out_of(self.host.holder, frame.stream)  # under our own name
        await self.host.nc.publish(subject, encode_frame(frame))

    async def release(self, activity: str, reason: f.EndReason) -> None:
        try:
            await self.host.focus.release(activity, reason)
        except WireError as exc:
            self.log.warning("release_failed", activity_id=activity, error=f"{exc.code}: {exc.message}")

    # -- claims -------------------------------------------------------------------------------
    def _session(self, claim: c.ClaimRef) -> ClaimSession:
        session = self.sessions.get(claim.claim_id)
        if session is None:
            session = self.sessions[claim.claim_id] = self._make_session(claim)
        if claim.activity_id is not None and session.activity_id is None:
            session.bind(claim.activity_id)
        return session

    def _make_session(self, claim: c.ClaimRef) -> ClaimSession:
        async def release(activity: str) -> None:
            await self.release(activity, f.EndReason.RELEASED)

        async def ask_end(reason: ClaimEndReason) -> None:
            await self.end_claim(claim.claim_id, reason)

        session = ClaimSession(
            skill=claim.skill,
            claim=claim.claim,
            effect_id=claim.effect_id,
            send=self.send_frame,
            release=release,
            ask_end=ask_end,
            open_mic=self._open_mic,
            lead_ms=self.settings.stream_lead_ms,
        )
        if claim.activity_id is not None:
            session.bind(claim.activity_id)
        return session

    async def end_claim(self, claim_id: int, reason: ClaimEndReason) -> bool:
        """End a claim on the skill's side (COMMS released); False if it had ended."""
        commands = self.core.end_claim(claim_id, reason, release=True)
        await self.perform(commands)
        return bool(commands)

    async def start_input_claim(self, skill: str, claim: InputClaim) -> ClaimHandle:
        busy = self.core.busy_claim()
        if busy is not None:
            raise ClaimBusyError(f"a claim of skill {busy.skill!r} is already live")
        ref = self.core.open_claim(skill, claim)
        session = self._session(ref)
        meta = f.ActivityMeta(kind=f.ActivityKind.CLAIM, skill=skill, title=claim.title)
        try:
            acquired = await self.host.focus.acquire(f.Channel.COMMS, skill, meta=meta)
        except WireError as exc:
            self.core.forget_claim(ref.claim_id)
            self.sessions.pop(ref.claim_id, None)
            if exc.code == ErrorCode.CLAIM_BUSY:
                raise ClaimBusyError(exc.message) from None
            raise
        session.bind(acquired.activity_id)
        self.dispatch(self.core.claim_acquired(ref.claim_id, acquired.activity_id, acquired.state))
        return session.handle()

    async def cancel_active_claim(self, skill: str, reason: ClaimEndReason) -> bool:
        claim = self.core.active_claim(skill)
        return claim is not None and await self.end_claim(claim.claim_id, reason)

    async def _open_mic(self, handler: Callable[[bytes], Awaitable[None]]) -> MicTap:
        async def on_frame(msg: Msg) -> None:
            try:
                frame = decode_frame(msg.data)
            except WireError as exc:
                self.log.warning("mic_frame_refused", error=exc.message)
                return
            await handler(frame.pcm)

        nc = self.host.nc
        sub = await nc.subscribe(self.host.subjects.audio_mic_claim(self.host.holder), cb=on_frame)
        await nc.flush()

        class Tap:
            async def close(self) -> None:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

        return Tap()
