"""Focus state in JetStream KV: one key, the whole state as JSON, written
before any state-changing request is answered."""

from __future__ import annotations

from typing import Any

import nats.js.errors
from nats.aio.client import Client
from pydantic import ValidationError

from huxley_focus.state import SavedFocus
from huxley_runtime.logging import get_logger

KEY = "state"

log = get_logger(component="focus-store")


class FocusStore:
    def __init__(self, nc: Client, bucket: str) -> None:
        self.nc = nc
        self.bucket = bucket
        self._kv: Any = None
        self.error: str | None = "not opened yet"

    @property
    def ready(self) -> bool:
        return self._kv is not None

    async def open(self) -> bool:
        try:
            self._kv = await self.nc.jetstream().create_key_value(bucket=self.bucket, history=1)
        except Exception as exc:
            self.error = f"JetStream KV {self.bucket} unavailable: {exc or type(exc).__name__}"
            return False
        self.error = None
        return True

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
        try:
            await self._kv.put(KEY, data)
        except Exception as exc:
            self.error = f"writing {self.bucket}: {exc or type(exc).__name__}"
            log.error("focus_state_not_saved", bucket=self.bucket, error=self.error)
            return False
        self.error = None
        return True
