"""Which identity each part runs as, and the environment that hands it over.

`huxley up` and the tests use the same rules: a core service runs as its
role, a skill host as `skill-<skill>` (or, running several skills, as its
`HUXLEY_INSTANCE` or `skill-host`) with a JWT covering every skill it runs.
"""

from __future__ import annotations

from pathlib import Path

from huxley_cli.auth import AuthStore
from huxley_runtime.persona import load_persona
from huxley_wire.permissions import Identity, skill_identity

CREDS_ENV = "HUXLEY_NATS_CREDS"
INBOX_ENV = "HUXLEY_NATS_INBOX_PREFIX"


def connection_env(store: AuthStore, identity: Identity, now: int) -> dict[str, str]:
    """The environment a child needs to connect as `identity` (minted if needed)."""
    path = store.ensure(identity, now)
    return {CREDS_ENV: str(path), INBOX_ENV: identity.inbox_prefix}


def persona_skills(persona: str, personas_dir: Path) -> tuple[str, tuple[str, ...]]:
    """The persona's name (its storage token) and its skills, in order."""
    loaded = load_persona(persona, personas_dir)
    return loaded.name, tuple(loaded.skills)


def skill_host_identity(site: str, persona: str, skills: tuple[str, ...], instance: str = "") -> Identity:
    """A skill host's identity: named for its skill, or for its instance when it runs several."""
    if not skills:
        raise ValueError("a skill host runs at least one skill")
    name = (instance or None) if len(skills) > 1 else None
    return skill_identity(site, persona, skills, name)
