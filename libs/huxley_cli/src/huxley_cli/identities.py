"""Which identity each part runs as, and the environment that hands it over.

`huxley up`, the tests and the benches use the same rules: a core service
runs as its role, a skill host as `skill-<skill>` (or, running several
skills, as its `HUXLEY_INSTANCE` or `skill-host`) with a JWT covering every
skill it runs. `SiteAuth` mints them on demand at one site, for a harness
(tests, benches) that starts parts itself.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client

from huxley_cli.auth import AuthStore
from huxley_runtime.persona import load_persona
from huxley_wire.permissions import (
    Identity,
    Role,
    harness_identity,
    service_identity,
    skill_identity,
)

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


class SiteAuth:
    """Identities at one site, minted on demand into `store` (whose server
    config the harness's nats-server runs)."""

    def __init__(self, site: str, store: AuthStore, personas_dir: Path, label: str = "harness") -> None:
        self.site = site
        self.store = store
        self.personas_dir = personas_dir
        self.label = label  # client names: `<label>-<identity>`

    def identity(
        self,
        role: Role | str,
        *,
        skills: tuple[str, ...] | list[str] = (),
        persona: str = "basic",
        personas_dir: Path | None = None,
        name: str = "",
        also_sites: tuple[str, ...] = (),
    ) -> Identity:
        role = Role(role)
        if role is Role.SKILL:
            found = tuple(skills)
            persona_name = persona
            if not found or Path(persona).suffix in (".yaml", ".yml"):
                persona_name, listed = persona_skills(persona, personas_dir or self.personas_dir)
                found = found or listed
            return skill_host_identity(self.site, persona_name, found, name)
        if role is Role.HARNESS:
            return harness_identity(self.site, name or "harness")
        if role in (Role.OBSERVER, Role.ADMIN):
            return Identity(role, self.site, name or str(role), also_sites=also_sites)
        identity = service_identity(role, self.site)
        return replace(identity, also_sites=also_sites) if also_sites else identity

    def creds(self, role: Role | str, **options: Any) -> Path:
        return self.store.ensure(self.identity(role, **options), int(time.time()))

    def env(self, role: Role | str, **options: Any) -> dict[str, str]:
        """HUXLEY_NATS_CREDS and HUXLEY_NATS_INBOX_PREFIX of a role."""
        return connection_env(self.store, self.identity(role, **options), int(time.time()))

    def fields(self, role: Role | str, **options: Any) -> dict[str, Any]:
        """The settings fields (`nats_creds`, `nats_inbox_prefix`) of a role."""
        identity = self.identity(role, **options)
        path = self.store.ensure(identity, int(time.time()))
        return {"nats_creds": path, "nats_inbox_prefix": identity.inbox_prefix}

    def options(self, role: Role | str = Role.HARNESS, **options: Any) -> dict[str, Any]:
        """nats-py connect options (`user_credentials`, `inbox_prefix`) of a role."""
        identity = self.identity(role, **options)
        path = self.store.ensure(identity, int(time.time()))
        return {"user_credentials": str(path), "inbox_prefix": identity.inbox_prefix}

    async def connect(self, url: str, role: Role | str = Role.HARNESS, **options: Any) -> Client:
        """A raw client as `role` (the harness by default)."""
        name = self.identity(role, **options).name
        return await nats.connect(url, name=f"{self.label}-{name}", **self.options(role, **options))
