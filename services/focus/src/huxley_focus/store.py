"""Focus state in JetStream KV: one key, the whole state as JSON, written
before any state-changing request is answered.

On a NATS cluster the bucket is replicated (`replicas`); while the cluster
elects a new leader for it after a node died, a write is retried for up to
`write_s` seconds, so the reply still follows a saved state."""

from __future__ import annotations

import asyncio
from typing import Any

import nats.js.errors
from nats.aio.client import Client
from pydantic import ValidationError

from huxley_focus.state import SavedFocus
from huxley_runtime.logging import get_logger

KEY = "state"
OPEN_TIMEOUT_S = 5.0
RETRY_PAUSE_S = 0.25

log = get_logger(component="focus-store")


class FocusStore:
    def __init__(self, nc: Client, bucket: str, replicas: int = 1, write_s: float = 0.0) -> None:
        self.nc = nc
        self.bucket = bucket
        self.replicas = replicas
        self.write_s = write_s
        self._kv: Any = None
        self.error: str | None = "not opened yet"

    @property
    def ready(self) -> bool:
        return self._kv is not None

    async def open(self) -> bool:
        js = self.nc.jetstream(timeout=OPEN_TIMEOUT_S)
        try:
            try:
                # Bind first: a read the stream's leader answers, even while a
                # cluster node is down (creating asks the meta leader).
                self._kv = await js.key_value(self.bucket)
                await self._check_replicas()
            except nats.js.errors.BucketNotFoundError:
                self._kv = await js.create_key_value(bucket=self.bucket, history=1, replicas=self.replicas)
        except Exception as exc:
            self.error = f"JetStream KV {self.bucket} unavailable: {exc or type(exc).__name__}"
            return False
        self.error = None
        return True

    async def _check_replicas(self) -> None:
        status = await self._kv.status()
        replicas = status.stream_info.config.num_replicas or 1
        if replicas != self.replicas:
            # Made earlier with other settings: used as it is (`nats kv edit`
            # or `nats stream edit KV_<bucket> --replicas` changes it).
            log.warning(
                "focus_bucket_replicas_differ", bucket=self.bucket, has=replicas, wanted=self.replicas
            )

    async def load(self) -> SavedFocus | None:
        if self._kv is None:
            return None
        try:
            entry = await self._kv.get(KEY)
        except nats.js.errors.KeyNotFoundError:
            return None
        try:
            return SavedFocus.model_validate_json(entry.value or b"{}")
        except ValidationError as exc:
            # A document we cannot read must not keep focus from starting.
            log.error("focus_state_unreadable", bucket=self.bucket, error=str(exc))
            return None

    async def save(self, data: bytes) -> bool:
        if self._kv is None:
            return False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.write_s if self.error is None else 0.0)
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._kv.put(KEY, data)
            except Exception as exc:
                self.error = f"writing {self.bucket}: {exc or type(exc).__name__}"
                if loop.time() < deadline:
                    await asyncio.sleep(RETRY_PAUSE_S)
                    continue
                log.error("focus_state_not_saved", bucket=self.bucket, error=self.error, attempts=attempt)
                return False
            if attempt > 1:
                log.info("focus_state_saved_after_retry", bucket=self.bucket, attempts=attempt)
            self.error = None
            return True
