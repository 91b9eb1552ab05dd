"""Playing the bridge's part on the bus in skill-host tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg

from huxley_runtime.bus import settle
from huxley_wire.codec import encode
from huxley_wire.messages.skills import Manifest, ToolCall
from huxley_wire.subjects import Subjects


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
