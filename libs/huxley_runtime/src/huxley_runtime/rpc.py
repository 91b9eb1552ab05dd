"""Request/reply over NATS with typed replies, timeouts and the error envelope.

A reply is either the expected model or `{error: {code, message}}`, which
comes back as a raised `WireError`. Bus failures map onto the same codes:
nobody listening -> `unavailable`, no answer in time -> `timeout`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import cast

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from pydantic import BaseModel

from huxley_wire.codec import MAX_CONTROL_BYTES, Request, decode_object, encode, reply_model_of, validate
from huxley_wire.errors import ErrorCode, WireError, parse_envelope

DEFAULT_TIMEOUT_S = 2.0
RETRYABLE = frozenset({ErrorCode.UNAVAILABLE, ErrorCode.TIMEOUT})


async def request[M: BaseModel](
    nc: Client,
    subject: str,
    message: Request[M],
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    max_reply_bytes: int = MAX_CONTROL_BYTES,
) -> M:
    try:
        reply = await nc.request(subject, encode(message), timeout=timeout)
    except nats.errors.NoRespondersError:
        raise WireError(ErrorCode.UNAVAILABLE, f"no service answers on {subject}") from None
    except (nats.errors.TimeoutError, TimeoutError):
        raise WireError(ErrorCode.TIMEOUT, f"no reply on {subject} within {timeout:g} s") from None
    except (nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError) as exc:
        raise WireError(ErrorCode.UNAVAILABLE, f"bus connection unavailable: {exc}") from None
    obj = decode_object(reply.data, max_reply_bytes)
    error = parse_envelope(obj)
    if error is not None:
        raise error
    return validate(obj, cast(type[M], reply_model_of(type(message))))


async def request_with_retry[M: BaseModel](
    nc: Client,
    subject: str,
    message: Request[M],
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    deadline_s: float | None = None,
    backoff_s: Iterable[float] = (0.1, 0.2, 0.5, 1.0, 2.0),
    max_reply_bytes: int = MAX_CONTROL_BYTES,
    retry_on: frozenset[ErrorCode] = RETRYABLE,
) -> M:
    """For idempotent requests: retry while the peer is unavailable or slow.
    (`retry_on={UNAVAILABLE}` suits one that must not run twice: a request
    nobody received can be sent again, one that timed out cannot.)

    With `deadline_s=None` it retries forever (an accepted inject must never be
    lost); the last backoff step repeats.
    """
    steps = list(backoff_s) or [1.0]
    loop = asyncio.get_running_loop()
    started = loop.time()
    attempt = 0
    while True:
        try:
            return await request(nc, subject, message, timeout=timeout, max_reply_bytes=max_reply_bytes)
        except WireError as exc:
            if exc.code not in retry_on:
                raise
            if deadline_s is not None and loop.time() - started >= deadline_s:
                raise
        await asyncio.sleep(steps[min(attempt, len(steps) - 1)])
        attempt += 1


async def gather_replies(
    nc: Client, subject: str, payload: bytes, *, wait_s: float = 0.5, max_replies: int = 1000
) -> list[bytes]:
    """Scatter-gather: publish once, collect every reply that arrives in time."""
    inbox = nc.new_inbox()
    replies: list[bytes] = []
    done = asyncio.Event()

    async def collect(msg: Msg) -> None:
        replies.append(msg.data)
        if len(replies) >= max_replies:
            done.set()

    sub = await nc.subscribe(inbox, cb=collect)
    try:
        await nc.publish(subject, payload, reply=inbox)
        await nc.flush()
        try:
            await asyncio.wait_for(done.wait(), wait_s)
        except TimeoutError:
            pass
    finally:
        await sub.unsubscribe()
    return replies
