"""Small asyncio helpers the holder and the follower share."""

from __future__ import annotations

import asyncio
import contextlib

from nats.aio.msg import Msg


def loop_now() -> float:
    return asyncio.get_running_loop().time()


async def cancel(*tasks: asyncio.Task[None] | None) -> None:
    """Cancel the tasks that exist and wait until they are gone."""
    live = [t for t in tasks if t is not None]
    for task in live:
        task.cancel()
    await asyncio.gather(*live, return_exceptions=True)


async def respond(msg: Msg, data: bytes) -> None:
    """Answer a request if it wants an answer; a vanished requester is not our problem."""
    if not msg.reply:
        return
    with contextlib.suppress(Exception):
        await msg.respond(data)
