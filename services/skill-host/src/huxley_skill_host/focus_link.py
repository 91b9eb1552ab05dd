"""The host's requests to focus, as one holder (its instance id).

Written against docs/protocol.md (Focus); `renew` is the lease heartbeat and
also tells the host whether focus is reachable.
"""

from __future__ import annotations

from nats.aio.client import Client

from huxley_runtime.rpc import request, request_with_retry
from huxley_wire.codec import Ok
from huxley_wire.messages import focus as f
from huxley_wire.subjects import Subjects

RPC_TIMEOUT_S = 2.0


class FocusLink:
    def __init__(self, nc: Client, subjects: Subjects, holder: str) -> None:
        self.nc = nc
        self.subject = subjects.focus_rpc()
        self.holder = holder

    async def acquire(
        self,
        channel: f.Channel,
        interface: str,
        *,
        content_type: f.ContentType = f.ContentType.NONMIXABLE,
        patience_ms: int = 0,
        meta: f.ActivityMeta | None = None,
    ) -> f.Acquired:
        message = f.Acquire(
            holder=self.holder,
            channel=channel,
            interface=interface,
            content_type=content_type,
            patience_ms=patience_ms,
            meta=meta or f.ActivityMeta(),
        )
        return await request(self.nc, self.subject, message, f.Acquired, timeout=RPC_TIMEOUT_S)

    async def release(self, activity_id: str, reason: f.EndReason = f.EndReason.RELEASED) -> None:
        message = f.Release(holder=self.holder, activity_id=activity_id, reason=reason)
        await request_with_retry(self.nc, self.subject, message, Ok, timeout=RPC_TIMEOUT_S, deadline_s=10)

    async def renew(self) -> f.Renewed:
        return await request(
            self.nc, self.subject, f.Renew(holder=self.holder), f.Renewed, timeout=RPC_TIMEOUT_S
        )

    async def inject(self, message: f.Inject) -> f.Injected:
        """Retried with the same inject_id until focus answers: focus accepts
        an id once, so a retry after a lost reply is `duplicate`, never a
        second inject."""
        return await request_with_retry(
            self.nc, self.subject, message, f.Injected, timeout=RPC_TIMEOUT_S, deadline_s=None
        )
