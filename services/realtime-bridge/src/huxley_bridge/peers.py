"""The coordinator's requests to its peers on the bus: focus (`interrupt`,
`acquire`, `release`, `turn_end`, `stop_channel`) in one ordered lane,
audio-io (`clear`, `set_volume`) in another, tool calls and effect discards
each in a task of their own. Every reply, failure or timeout goes back to
the loop as an event (`put`); nothing here decides anything.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

from nats.aio.client import Client

from huxley_bridge import commands as c
from huxley_bridge import events as e
from huxley_bridge.lane import Lane
from huxley_runtime.focus_client import FocusClient
from huxley_runtime.logging import get_logger
from huxley_runtime.rpc import request, request_with_retry
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages import audio as am
from huxley_wire.messages import skills as sm
from huxley_wire.messages.focus import Channel
from huxley_wire.subjects import InvalidToken, Subjects

log = get_logger(component="adapter")

Spawn = Callable[[Coroutine[Any, Any, Any], str], object]
DISCARD_DEADLINE_S = 5.0  # a discard is retried this long, then logged

FocusCommand = c.Interrupt | c.AcquireDialog | c.ReleaseActivity | c.EndTurn | c.StopChannel
AudioCommand = c.ClearAudio | c.SetVolume


class BusRequests:
    def __init__(
        self,
        nc: Client,
        subjects: Subjects,
        focus: FocusClient,
        put: Callable[[e.Event], None],
        spawn: Spawn,
    ) -> None:
        self.nc = nc
        self.subjects = subjects
        self.focus = focus
        self._put = put
        self._spawn = spawn
        self._focus_lane = Lane("focus")  # the coordinator relies on focus seeing them in order
        self._audio_lane = Lane("audio")

    def start(self) -> None:
        self._focus_lane.start()
        self._audio_lane.start()

    async def stop(self) -> None:
        await self._focus_lane.stop()
        await self._audio_lane.stop()

    def run(self, cmd: FocusCommand | AudioCommand | c.CallTool | c.DiscardEffect) -> None:
        match cmd:
            case c.Interrupt() | c.AcquireDialog() | c.ReleaseActivity() | c.EndTurn() | c.StopChannel():
                self._focus_lane.put(partial(self._focus_request, cmd))
            case c.ClearAudio() | c.SetVolume():
                self._audio_lane.put(partial(self._audio_request, cmd))
            case c.CallTool():
                self._spawn(self._call_tool(cmd), f"tool-{cmd.call_id}")
            case c.DiscardEffect():
                self._spawn(self._discard(cmd), f"discard-{cmd.effect_id}")

    async def _focus_request(self, cmd: FocusCommand) -> None:
        match cmd:
            case c.Interrupt(token=token, claim_grace_ms=grace):
                try:
                    done = await self.focus.interrupt(claim_grace_ms=grace)
                except WireError as exc:
                    self._put(e.InterruptFailed(token, exc.message))
                else:
                    self._put(e.InterruptDone(token, done.ended_claim, done.claim_age_ms, done.ignored))
            case c.AcquireDialog(turn_id=turn_id, interface=interface, meta=meta):
                try:
                    granted = await self.focus.acquire(Channel.DIALOG, interface, meta=meta)
                except WireError as exc:
                    self._put(e.DialogAcquireFailed(turn_id, exc.message))
                else:
                    self._put(e.DialogAcquired(turn_id, granted.activity_id))
            case c.ReleaseActivity(activity_id=activity_id):
                with contextlib.suppress(WireError):
                    await self.focus.release(activity_id)
            case c.EndTurn(turn_id=turn_id, activity_id=activity_id, inject_id=inject_id, pending=pending):
                try:
                    ended = await self.focus.turn_end(activity_id, inject_id=inject_id, pending=pending)
                except WireError as exc:
                    log.warning("turn_end_failed", turn=turn_id, code=str(exc.code), error=exc.message)
                    self._put(e.TurnEndDone(turn_id, ok=False))
                else:
                    self._put(e.TurnEndDone(turn_id, ended.outcome))
            case c.StopChannel(channel=channel):
                try:
                    await self.focus.stop_channel(channel)
                except WireError as exc:
                    log.warning("stop_channel_failed", channel=str(channel), error=exc.message)

    async def _audio_request(self, cmd: AudioCommand) -> None:
        subject = self.subjects.audio_rpc()
        match cmd:
            case c.ClearAudio(token=token, stream_id=stream_id):
                try:
                    cleared = await request(self.nc, subject, am.Clear(stream_id=stream_id))
                except WireError as exc:
                    # The turn goes on: nothing was cleared, so nothing is known to be unheard.
                    log.warning("audio_clear_failed", code=str(exc.code), error=exc.message)
                    self._put(e.AudioCleared(token, ok=False))
                else:
                    self._put(e.AudioCleared(token, True, cleared.played))
            case c.SetVolume(level=level):
                try:
                    await request(self.nc, subject, am.SetVolume(level=level))
                except WireError as exc:
                    log.warning("set_volume_failed", level=level, error=exc.message)

    async def _call_tool(self, cmd: c.CallTool) -> None:
        call = sm.ToolCall(call_id=cmd.call_id, tool=cmd.tool, args=cmd.args, turn_id=cmd.turn_id)
        try:
            subject = self.subjects.skill_tool(cmd.skill)
            reply = await request(self.nc, subject, call, timeout=cmd.timeout_s)
        except InvalidToken as exc:
            self._put(e.ToolFailed(cmd.call_id, str(ErrorCode.UNAVAILABLE), str(exc)))
        except WireError as exc:
            self._put(e.ToolFailed(cmd.call_id, str(exc.code), exc.message))
        else:
            self._put(e.ToolDone(cmd.call_id, reply))

    async def _discard(self, cmd: c.DiscardEffect) -> None:
        message = sm.DiscardEffect(effect_id=cmd.effect_id, reason=cmd.reason)
        try:
            subject = self.subjects.skill_host_rpc(cmd.host)
            await request_with_retry(self.nc, subject, message, deadline_s=DISCARD_DEADLINE_S)
        except (WireError, InvalidToken) as exc:
            # The host is gone (its effects with it) or already forgot the effect.
            log.info("discard_not_delivered", host=cmd.host, effect=cmd.effect_id, error=str(exc))
