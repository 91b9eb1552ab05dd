"""Skill-host messages.

Subjects:
  skills.tool.<skill>     ToolCall -> ToolReply (queue group per skill, so a
                          skill scales out across hosts)
  skills.host.<host>      requests to one host instance: DiscardEffect (bridge),
                          SetSkillEnabled, SetSkillConfig, SetSkillSecret,
                          DeleteSkillSecret (audio-io, for the client's skills
                          panel) -> SkillChanged
  skills.manifest         Manifest, published by each host at start, on
                          skills.announce and every 10 s; `bye` on clean stop
  skills.announce         AnnounceRequest: every host re-publishes its manifest
  client.event            ClientEvent (gateway -> skills)
  client.server_event     ServerEvent (skills -> gateway)
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from huxley_wire.codec import Message, Ok, Request
from huxley_wire.messages.focus import ContentType

TOOL_TIMEOUT_S = 30.0


class AudioStreamEffect(Message):
    kind: Literal["audio_stream"] = "audio_stream"
    effect_id: str
    content_type: ContentType = ContentType.NONMIXABLE
    patience_ms: int = 0
    label: str | None = None
    preroll_ms: int = 0
    has_complete_prompt: bool = False


class InputClaimEffect(Message):
    kind: Literal["input_claim"] = "input_claim"
    effect_id: str
    title: str | None = None


class PlaySoundEffect(Message):
    kind: Literal["play_sound"] = "play_sound"
    pcm_b64: str  # PCM16 24 kHz mono, base64


class CancelMediaEffect(Message):
    kind: Literal["cancel_media"] = "cancel_media"


class SetVolumeEffect(Message):
    kind: Literal["set_volume"] = "set_volume"
    level: int = Field(ge=0, le=100)


SideEffectWire = Annotated[
    AudioStreamEffect | InputClaimEffect | PlaySoundEffect | CancelMediaEffect | SetVolumeEffect,
    Field(discriminator="kind"),
]


class ToolReply(Message):
    output: str
    side_effect: SideEffectWire | None = None
    host: str  # the host instance that holds any effect
    skill: str


class ToolCall(Request[ToolReply]):
    op = "call"
    call_id: str
    tool: str
    args: dict[str, Any]
    turn_id: str | None = None


class DiscardEffect(Request[Ok]):
    """The bridge dropped a pending effect (PTT, superseded by a later one).
    A discarded claim still gets on_claim_end(reason) exactly once."""

    op = "discard"
    effect_id: str
    reason: Literal["user_ptt", "superseded", "preempted", "error"] = "superseded"


class ToolManifest(Message):
    name: str
    description: str
    parameters: dict[str, Any]


# ok: serving. starting: setup running. waiting: a peer it needs (storage) is
# down, retrying. degraded: serving, but something failed (a tool timed out, a
# background task gave up). failed: not serving (load or setup failed, refused).
# disabled: turned off from the client's skills panel (not serving, no setup).
SkillStatus = Literal["ok", "starting", "waiting", "degraded", "failed", "disabled"]


class SkillManifest(Message):
    name: str
    tools: list[ToolManifest]  # empty unless the skill is serving (ok or degraded)
    prompt_context: str = ""
    status: SkillStatus = "ok"
    error: str | None = None
    # For the client's skills panel: what the skill is and how it is set up.
    enabled: bool = True
    package: str | None = None
    version: str | None = None
    description: str | None = None
    config_schema: dict[str, Any] | None = None
    data_schema_version: int = 1
    config: dict[str, Any] = Field(default_factory=dict)  # the skill's config, secret keys left out
    secret_keys_set: list[str] = Field(default_factory=list)  # names only, never values
    secret_required_keys: list[str] = Field(default_factory=list)  # schema keys with format "secret"


class Manifest(Message):
    host: str
    persona: str
    language: str = "en"
    skills: list[SkillManifest]
    bye: bool = False  # the host is stopping: forget its skills


class AnnounceRequest(Message):
    """Every host re-publishes its manifest. With `language` (the bridge sends
    it when the session language changes) hosts first reconfigure their
    skills for that language, so the manifest carries the new descriptions."""

    reason: str = ""
    language: str | None = None


class SkillChanged(Message):
    """A management request's answer: the skill as it is now (secrets as key names only)."""

    host: str
    skill: SkillManifest


class SetSkillEnabled(Request[SkillChanged]):
    """Turn a skill off (stop serving its tools, teardown) or on again (setup,
    serve). Remembered by the host across restarts."""

    op = "set_skill_enabled"
    skill: str
    enabled: bool


class SetSkillConfig(Request[SkillChanged]):
    """Replace the skill's config (the persona's block stays the default
    underneath; secret keys are refused here), persist it, reconfigure."""

    op = "set_skill_config"
    skill: str
    config: dict[str, Any]


class SetSkillSecret(Request[SkillChanged]):
    """Write one secret of the skill to its secrets file (0600). The value is
    never echoed: the answer lists key names only."""

    op = "set_skill_secret"
    skill: str
    key: str = Field(min_length=1, max_length=128)
    value: str = Field(max_length=16 * 1024, repr=False)


class DeleteSkillSecret(Request[SkillChanged]):
    op = "delete_skill_secret"
    skill: str
    key: str = Field(min_length=1, max_length=128)


class ClientEvent(Message):
    event: str
    data: dict[str, Any] = Field(default_factory=dict)


class ServerEvent(Message):
    event: str
    data: dict[str, Any] = Field(default_factory=dict)
    skill: str | None = None


def duplicate_tools(manifests: list[Manifest]) -> dict[str, str]:
    """Skills to refuse because a tool of theirs is already declared by another
    skill, across hosts: {refused skill: message naming both skills}.

    Manifests are taken in the order given (the bridge passes them in the order
    it first heard of each skill); the same skill on several hosts (scaled out)
    is not a conflict. Only serving skills (ok, degraded) count."""
    owner: dict[str, str] = {}
    refused: dict[str, str] = {}
    for manifest in manifests:
        if manifest.bye:
            continue
        for skill in manifest.skills:
            if skill.status not in ("ok", "degraded") or skill.name in refused:
                continue
            clash = next((t.name for t in skill.tools if owner.get(t.name, skill.name) != skill.name), None)
            if clash is not None:
                refused[skill.name] = (
                    f"tool {clash!r} is declared by both skill {owner[clash]!r} and skill {skill.name!r}; "
                    f"{skill.name!r} refused"
                )
                continue
            for tool in skill.tools:
                owner[tool.name] = skill.name
    return refused
