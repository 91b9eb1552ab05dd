"""Small asyncio helpers the holder and the follower share."""

from __future__ import annotations

import asyncio
import contextlib
import json

from nats.aio.msg import Msg

from huxley_wire.errors import WireError


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


def encode_error(exc: WireError) -> bytes:
    """The error envelope, ASCII-escaped: a message quoting a peer's lone
    surrogate must still encode."""
    return json.dumps(exc.envelope(), separators=(",", ":")).encode()
