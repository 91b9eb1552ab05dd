"""What focus persists (one JSON document in JetStream KV) so a restarted focus
finds its stacks, queue, current inject and holders again."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from huxley_wire.messages.focus import (
    ActivityMeta,
    Channel,
    ContentType,
    FocusState,
    InjectPriority,
    TurnEnded,
)

STATE_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SavedActivity(_Model):
    activity_id: str
    channel: Channel
    interface: str
    holder: str
    content_type: ContentType
    patience_ms: int
    meta: ActivityMeta
    acquired_at: float
    state: FocusState | None = None
    patience_deadline: float | None = None  # wall clock: patience keeps running while focus is down
    granted_at: float | None = None
    announced: bool = False
    parked: bool = False  # paused under an injected turn without patience (resumes after it)


class SavedInject(_Model):
    inject_id: str
    prompt: str
    priority: InjectPriority
    dedup_key: str | None = None
    skill: str | None = None
    wait: bool = False
    enqueued_at: float
    expires_at: float | None = None


class SavedFiring(_Model):
    entry: SavedInject
    activity_id: str
    accepted: bool = False


class SavedFocus(_Model):
    version: int = STATE_VERSION
    seq: int = 0
    activities: list[SavedActivity] = Field(default_factory=list)  # each stack bottom first
    queue: list[SavedInject] = Field(default_factory=list)
    current: SavedFiring | None = None
    seen: list[str] = Field(default_factory=list)  # accepted inject ids, oldest first
    holders: list[str] = Field(default_factory=list)  # each gets a fresh lease on load
    turn_ends: dict[str, TurnEnded] = Field(default_factory=dict)  # activity id -> reply (retries)
    bridge_ready: bool = True  # the bridge's last stated readiness (its next renew restates it)
