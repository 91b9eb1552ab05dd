"""Request/reply over NATS with typed replies, timeouts and the error envelope.

A reply is either the expected model or `{error: {code, message}}`, which
comes back as a raised `WireError`. Bus failures map onto the same codes:
nobody listening -> `unavailable`, no answer in time -> `timeout`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from pydantic import BaseModel

from huxley_runtime.retry import IDEMPOTENT, RETRYABLE, Keep, OnRetry, RetryPolicy, with_policy
from huxley_wire.codec import MAX_CONTROL_BYTES, Request, decode_object, encode, reply_model_of, validate
from huxley_wire.errors import ErrorCode, WireError, parse_envelope

DEFAULT_TIMEOUT_S = 2.0
__all__ = ["DEFAULT_TIMEOUT_S", "RETRYABLE", "gather_replies", "request", "request_with_retry"]


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
    policy: RetryPolicy = IDEMPOTENT,
    timeout: float | None = None,
    deadline_s: float | Keep | None = Keep.KEEP,
    max_reply_bytes: int = MAX_CONTROL_BYTES,
    retry_on: frozenset[ErrorCode] | None = None,
    keep_going: Callable[[], bool] | None = None,
    on_retry: OnRetry | None = None,
) -> M:
    """A request under a retry policy (huxley_runtime.retry): IDEMPOTENT by
    default; ONCE for one that must not run twice; FOREVER for one that must
    not be lost. `timeout` (per attempt), `deadline_s` (None: forever) and
    `retry_on` override the policy's; `keep_going` ends the retries early."""
    chosen = policy.but(retry_on=retry_on, attempt_timeout_s=timeout, deadline_s=deadline_s)

    async def attempt(timeout_s: float) -> M:
        return await request(nc, subject, message, timeout=timeout_s, max_reply_bytes=max_reply_bytes)

    return await with_policy(chosen, attempt, keep_going=keep_going, on_retry=on_retry)


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
