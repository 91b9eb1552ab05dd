"""Playing the bridge's part on the bus in skill-host tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, Literal

from nats.aio.client import Client
from nats.aio.msg import Msg

from huxley_runtime.bus import settle
from huxley_runtime.focus_client import FocusClient
from huxley_wire.audio import AudioFrame, decode_frame
from huxley_wire.codec import Ok, RequestTable, encode, encode_obj
from huxley_wire.errors import WireError
from huxley_wire.messages.bridge import Completion, InjectAccepted, RunInject
from huxley_wire.messages.focus import ActivityKind, ActivityMeta, Channel, PendingEffect, TurnEnded
from huxley_wire.messages.skills import Manifest, ToolCall
from huxley_wire.subjects import Subjects
from support.focus_peers import Recorder, RecordingHandler


async def call_raw(
    nc: Client, site: str, skill: str, payload: bytes, timeout: float = 10.0
) -> dict[str, Any]:
    reply = await nc.request(Subjects(site).skill_tool(skill), payload, timeout=timeout)
    result: dict[str, Any] = json.loads(reply.data)
    return result


async def call_tool(
    nc: Client, site: str, skill: str, tool: str, args: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    call = ToolCall(call_id="c-test", tool=tool, args=args or {}, **extra)
    return await call_raw(nc, site, skill, encode(call))


class Watch:
    """Collects the decoded JSON messages of one subject and waits for one that matches."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._changed = asyncio.Condition()

    async def start(self, nc: Client, subject: str) -> Watch:
        async def keep(msg: Msg) -> None:
            async with self._changed:
                self.messages.append(json.loads(msg.data))
                self._changed.notify_all()

        self.sub = await nc.subscribe(subject, cb=keep)
        await settle(nc)
        return self

    async def wait_for(
        self, match: Callable[[dict[str, Any]], bool], timeout: float = 20.0
    ) -> dict[str, Any]:
        async with asyncio.timeout(timeout), self._changed:
            while True:
                for message in self.messages:
                    if match(message):
                        return message
                await self._changed.wait()


def skill_in(manifest: dict[str, Any], name: str) -> dict[str, Any] | None:
    parsed = Manifest.model_validate(manifest)
    for skill in parsed.skills:
        if skill.name == name:
            return skill.model_dump()
    return None


async def manifests(nc: Client, site: str) -> Watch:
    return await Watch().start(nc, Subjects(site).skills_manifest())


class BridgeStandIn:
    """The realtime bridge's part, until it exists: holder `bridge` with a
    FocusClient, and responders on bridge.inject (`run_inject`, idempotent on
    inject_id) and bridge.rpc (`completion`), recording both."""

    def __init__(self, nc: Client, site: str) -> None:
        self.nc = nc
        self.subjects = Subjects(site)
        self.handler = RecordingHandler()
        self.focus = FocusClient(nc, self.subjects, "bridge", self.handler)
        self.run_injects = Recorder()
        self.completions = Recorder()
        self._table = RequestTable([RunInject, Completion])
        self._subs: list[Any] = []

    async def start(self) -> BridgeStandIn:
        for subject in (self.subjects.bridge_inject(), self.subjects.bridge_rpc()):
            self._subs.append(await self.nc.subscribe(subject, cb=self._serve))
        await settle(self.nc)
        await self.focus.start()
        return self

    async def stop(self) -> None:
        await self.focus.stop()
        for sub in self._subs:
            await sub.unsubscribe()

    async def _serve(self, msg: Msg) -> None:
        try:
            request = self._table.decode(msg.data)
        except WireError as exc:
            await msg.respond(encode_obj(exc.envelope()))
            return
        if isinstance(request, RunInject):
            first = not any(r.inject_id == request.inject_id for r in self.run_injects.items)
            self.run_injects.add(request)
            status: Literal["accepted", "already_running"] = "accepted" if first else "already_running"
            await msg.respond(encode(InjectAccepted(inject_id=request.inject_id, status=status)))
        else:
            self.completions.add(request)
            await msg.respond(encode(Ok()))

    async def user_turn(self) -> str:
        """Take DIALOG as a user turn does; returns its activity id."""
        granted = await self.focus.acquire(
            Channel.DIALOG, "assistant", meta=ActivityMeta(kind=ActivityKind.TURN)
        )
        return granted.activity_id

    async def end_turn(
        self, activity_id: str, reply: dict[str, Any] | None = None, **options: Any
    ) -> TurnEnded:
        """The turn's barrier, with the stream or claim a tool reply carried."""
        return await self.focus.turn_end(
            activity_id, pending=pending_effect(reply) if reply else None, **options
        )


def pending_effect(reply: dict[str, Any]) -> PendingEffect:
    effect = reply["side_effect"]
    kind = {"audio_stream": "stream", "input_claim": "claim"}[effect["kind"]]
    return PendingEffect(
        kind=kind,  # type: ignore[arg-type]
        host=reply["host"],
        skill=reply["skill"],
        effect_id=effect["effect_id"],
        content_type=effect.get("content_type", "nonmixable"),
        patience_ms=effect.get("patience_ms", 0),
        label=effect.get("label"),
        title=effect.get("title"),
        preroll_ms=effect.get("preroll_ms", 0),
    )


class FrameTap:
    """Every output frame on audio.out.*, decoded, in arrival order."""

    def __init__(self) -> None:
        self.frames: list[AudioFrame] = []
        self._changed = asyncio.Condition()

    async def start(self, nc: Client, site: str) -> FrameTap:
        async def keep(msg: Msg) -> None:
            async with self._changed:
                self.frames.append(decode_frame(msg.data))
                self._changed.notify_all()

        self.sub = await nc.subscribe(Subjects(site).audio_out_owned_all(), cb=keep)
        await settle(nc)
        return self

    def of(self, stream: str) -> list[AudioFrame]:
        return [f for f in self.frames if f.stream == stream]

    async def wait_for(self, match: Callable[[list[AudioFrame]], bool], timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: match(self.frames))


async def eventually(predicate: Callable[[], Any], timeout: float = 20.0, every: float = 0.01) -> None:
    """Wait (bounded) until `predicate()` holds: for state that has no event of its own."""
    async with asyncio.timeout(timeout):
        while True:
            if predicate():
                return
            await asyncio.sleep(every)
