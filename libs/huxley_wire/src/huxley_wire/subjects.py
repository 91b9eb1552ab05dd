"""Every NATS subject of the system, built in one place.

All subjects start with `huxley.<site>.` so one bus can serve several homes or
rooms. Variable tokens (persona, skill, holder, stream ids) are validated so a
caller can never smuggle a `.`, `*` or `>` into a subject.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ROOT = "huxley"
DEFAULT_SITE = "home"

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

SERVICES = ("storage", "focus", "realtime-bridge", "skill-host", "audio-io")


class InvalidToken(ValueError):
    """A subject token that is empty, too long or not `[A-Za-z0-9_-]`."""


def token(value: str, what: str = "token") -> str:
    if not isinstance(value, str) or not _TOKEN.match(value):
        raise InvalidToken(f"invalid {what} {value!r}: use 1-64 of [A-Za-z0-9_-]")
    return value


def focus_kv_bucket(site: str) -> str:
    """Focus's JetStream KV bucket at a site (its stream is `KV_<bucket>`):
    one per room, and focus's rights reach its own only."""
    return f"{ROOT}_{token(site, 'site')}_focus"


@dataclass(frozen=True, slots=True)
class Subjects:
    """Subject builders for one site."""

    site: str = DEFAULT_SITE

    def __post_init__(self) -> None:
        token(self.site, "site")

    @property
    def prefix(self) -> str:
        return f"{ROOT}.{self.site}"

    @property
    def everything(self) -> str:
        return f"{self.prefix}.>"

    # -- every service -------------------------------------------------------
    def health(self, service: str) -> str:
        return f"{self.prefix}.health.{token(service, 'service')}"

    def health_all(self) -> str:
        return f"{self.prefix}.health.*"

    # -- storage -------------------------------------------------------------
    def storage_kv(self, persona: str, skill: str) -> str:
        return f"{self.prefix}.storage.kv.{token(persona, 'persona')}.{token(skill, 'skill')}"

    def storage_kv_all(self) -> str:
        return f"{self.prefix}.storage.kv.*.*"

    def storage_kv_of_skill(self, skill: str) -> str:
        """One namespace name under every persona (a service's own settings)."""
        return f"{self.prefix}.storage.kv.*.{token(skill, 'skill')}"

    def storage_schema(self, persona: str, skill: str) -> str:
        return f"{self.prefix}.storage.schema.{token(persona, 'persona')}.{token(skill, 'skill')}"

    def storage_schema_all(self) -> str:
        return f"{self.prefix}.storage.schema.*.*"

    def storage_sessions(self, persona: str) -> str:
        return f"{self.prefix}.storage.sessions.{token(persona, 'persona')}"

    def storage_sessions_all(self) -> str:
        return f"{self.prefix}.storage.sessions.*"

    def storage_admin(self) -> str:
        return f"{self.prefix}.storage.admin"

    # -- focus ---------------------------------------------------------------
    def focus_rpc_of(self, holder: str) -> str:
        """Focus requests of one holder: the subject names who acts, so
        permissions bind a holder to its own requests (focus checks the body)."""
        return f"{self.prefix}.focus.rpc.{token(holder, 'holder')}"

    def focus_rpc_all(self) -> str:
        return f"{self.prefix}.focus.rpc.*"

    def focus_notify(self, holder: str) -> str:
        return f"{self.prefix}.focus.notify.{token(holder, 'holder')}"

    def focus_notify_all(self) -> str:
        return f"{self.prefix}.focus.notify.*"

    def focus_event(self, kind: str) -> str:
        return f"{self.prefix}.focus.event.{token(kind, 'event kind')}"

    def focus_events(self) -> str:
        return f"{self.prefix}.focus.event.>"

    # -- realtime bridge -----------------------------------------------------
    def bridge_rpc(self) -> str:
        return f"{self.prefix}.bridge.rpc"

    def bridge_inject(self) -> str:
        """`run_inject`, apart from `bridge.rpc` so that only focus may send
        it: an injected turn goes through focus's scheduler or not at all."""
        return f"{self.prefix}.bridge.inject"

    def bridge_event(self, kind: str) -> str:
        return f"{self.prefix}.bridge.event.{token(kind, 'event kind')}"

    def bridge_events(self) -> str:
        return f"{self.prefix}.bridge.event.>"

    # -- skill hosts ---------------------------------------------------------
    def skill_tool(self, skill: str) -> str:
        return f"{self.prefix}.skills.tool.{token(skill, 'skill')}"

    def skill_tool_all(self) -> str:
        return f"{self.prefix}.skills.tool.*"

    def skill_host_rpc(self, host: str) -> str:
        return f"{self.prefix}.skills.host.{token(host, 'host')}"

    def skill_host_rpc_all(self) -> str:
        return f"{self.prefix}.skills.host.*"

    def skill_setup(self, host: str, skill: str) -> str:
        """The skills panel's writes (enable, config, secrets) to one skill on
        one host: naming the skill lets permissions send a skill's secrets
        only to a host allowed to run it, whatever its manifest claims."""
        return f"{self.prefix}.skills.setup.{token(host, 'host')}.{token(skill, 'skill')}"

    def skill_setup_all(self) -> str:
        return f"{self.prefix}.skills.setup.*.*"

    def skills_manifest(self) -> str:
        return f"{self.prefix}.skills.manifest"

    def skills_announce(self) -> str:
        return f"{self.prefix}.skills.announce"

    # -- audio-io ------------------------------------------------------------
    def audio_rpc(self) -> str:
        return f"{self.prefix}.audio.rpc"

    def audio_mic_assistant(self) -> str:
        """Mic frames while PTT is held (for the bridge)."""
        return f"{self.prefix}.audio.mic.assistant"

    def audio_mic_claim(self, holder: str) -> str:
        """Mic frames of a COMMS claim, for its holder only."""
        return f"{self.prefix}.audio.mic.claim.{token(holder, 'holder')}"

    def audio_mic_claim_all(self) -> str:
        return f"{self.prefix}.audio.mic.claim.*"

    def audio_mic_all(self) -> str:
        """Every mic subject, both routes and every claim."""
        return f"{self.prefix}.audio.mic.>"

    def audio_out_of(self, owner: str, stream_id: str) -> str:
        """Output frames under their producer's name, so a producer can
        publish only its own streams."""
        return f"{self.prefix}.audio.out.{token(owner, 'owner')}.{token(stream_id, 'stream id')}"

    def audio_out_owned(self, owner: str) -> str:
        return f"{self.prefix}.audio.out.{token(owner, 'owner')}.*"

    def audio_out_owned_all(self) -> str:
        return f"{self.prefix}.audio.out.*.*"

    def audio_ptt(self) -> str:
        return f"{self.prefix}.audio.ptt"

    def audio_played(self) -> str:
        return f"{self.prefix}.audio.played"

    def audio_event(self, kind: str) -> str:
        return f"{self.prefix}.audio.event.{token(kind, 'event kind')}"

    def audio_events(self) -> str:
        return f"{self.prefix}.audio.event.*"

    # -- web client relay ----------------------------------------------------
    def client_events(self) -> str:
        """Every `client_event` from the web client; the key travels in the body."""
        return f"{self.prefix}.client.event"

    def server_event(self) -> str:
        return f"{self.prefix}.client.server_event"

    def is_audio(self, subject: str) -> bool:
        """Subjects whose payload is a binary audio frame, not JSON."""
        return subject.startswith(f"{self.prefix}.audio.out.") or subject.startswith(
            f"{self.prefix}.audio.mic."
        )
