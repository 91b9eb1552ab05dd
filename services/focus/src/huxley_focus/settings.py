"""Focus settings (HUXLEY_FOCUS_* on top of the shared HUXLEY_* ones)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from huxley_runtime.settings import HuxleySettings
from huxley_wire.messages.focus import DEFAULT_CHANNEL_PRIORITY, Channel
from huxley_wire.subjects import focus_kv_bucket


class FocusSettings(HuxleySettings):
    # Lower wins. A partial mapping (HUXLEY_FOCUS_PRIORITIES='{"alert": 120}')
    # overrides only the channels it names.
    focus_priorities: dict[Channel, int] = Field(default_factory=lambda: dict(DEFAULT_CHANNEL_PRIORITY))
    focus_duck_gain: float = Field(default=0.3, ge=0.0, le=1.0)
    focus_ramp_ms: int = Field(default=100, ge=0, le=5_000)
    # A holder holding an activity is given up after focus_lease_s of silence;
    # one holding nothing (renewing slowly, FOCUS-14) after focus_presence_s.
    focus_lease_s: float = Field(default=3.0, gt=0)
    focus_presence_s: float = Field(default=30.0, gt=0)
    # How long focus waits for a holder's ack before logging and moving on.
    focus_notify_timeout_s: float = Field(default=1.0, gt=0)
    # How long a holder's on_patience_expired may run before the NONE goes out.
    focus_patience_hook_timeout_s: float = Field(default=2.5, gt=0)
    # After a user-PTT interrupt that ended no claim, the queue waits this long
    # for the user's turn to take DIALOG before it may fire again.
    focus_interrupt_hold_s: float = Field(default=2.0, ge=0)
    focus_run_inject_timeout_s: float = Field(default=2.0, gt=0)
    # Persist state to JetStream KV (bucket huxley_<site>_focus).
    focus_persist: bool = True
    # Copies of that bucket: 3 on a 3-node NATS cluster, so losing a node loses
    # no state (an existing bucket keeps the replicas it was made with).
    focus_kv_replicas: int = Field(default=1, ge=1, le=5)
    # How long one state write keeps retrying while a cluster elects a new
    # leader for the bucket (about 5 s on loopback) before focus goes on and
    # logs it; after a failed write the next tries once only, so an outage
    # does not slow every operation.
    focus_store_write_s: float = Field(default=10.0, ge=0)

    @field_validator("focus_priorities", mode="before")
    @classmethod
    def _merge_defaults(cls, value: Any) -> Any:
        if isinstance(value, dict):
            merged: dict[Any, Any] = {str(k): v for k, v in DEFAULT_CHANNEL_PRIORITY.items()}
            merged.update({str(k): v for k, v in value.items()})
            return merged
        return value

    def kv_bucket(self) -> str:
        return focus_kv_bucket(self.site)
