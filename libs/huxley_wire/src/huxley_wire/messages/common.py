"""Messages every service understands."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from huxley_wire.codec import Message, Request


class Health(Message):
    service: str
    instance: str
    site: str
    status: Literal["ok", "degraded", "starting"] = "ok"
    version: str = "0.1.0"
    uptime_s: float = 0.0
    # Service-specific facts: skills and their state, database, model session...
    detail: dict[str, Any] = Field(default_factory=dict)


class HealthRequest(Request[Health]):
    op = "health"
