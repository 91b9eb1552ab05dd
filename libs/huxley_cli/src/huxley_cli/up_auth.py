"""`huxley up`'s side of authentication: run `huxley init` (idempotent), then
give each child its own identity through its environment, and the watchdog
the observer's.

The skill host runs every skill of the persona, so its identity (named
`skill-<skill>`, or `skill-host` for several) covers all of them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from huxley_cli.auth import AuthStore
from huxley_cli.auth_cmd import core_identities, init_home
from huxley_cli.identities import connection_env, persona_skills, skill_host_identity
from huxley_runtime.settings import HuxleySettings
from huxley_wire.permissions import (
    MULTI_SITE_ROLES,
    SERVICE_ROLES,
    Identity,
    Role,
    inbox_prefix,
    service_identity,
)

SKILL_HOST_INSTANCE = "skill-host"


@dataclass
class UpAuth:
    store: AuthStore
    site: str  # the home's own site (the first room)
    rooms: tuple[str, ...] = ()  # every room (`up --sites`); empty: the one site

    @classmethod
    def prepare(cls, data_dir: Path, site: str, rooms: tuple[str, ...] = ()) -> UpAuth:
        store = AuthStore.of(data_dir)
        now = int(time.time())
        if len(rooms) <= 1:
            init_home(store, site, now)
            return cls(store, site, rooms)
        # Several rooms: the home's storage, observer and admin cover them all.
        store.init(now)
        others = tuple(r for r in rooms if r != site)
        for identity in core_identities(site):
            if identity.role in MULTI_SITE_ROLES:
                identity = replace(identity, also_sites=others)
            store.ensure(identity, now)
        return cls(store, site, rooms)

    @property
    def config(self) -> Path:
        return self.store.config_path

    def identity(self, service: str, persona: str, personas_dir: Path, site: str | None = None) -> Identity:
        site = site or self.site
        role = next(r for r in SERVICE_ROLES if str(r) == service)
        if role is not Role.SKILL:
            identity = service_identity(role, site)
            others = tuple(r for r in self.rooms if r != site)
            if role in MULTI_SITE_ROLES and others:
                identity = replace(identity, also_sites=others)
            return identity
        name, skills = persona_skills(persona, personas_dir)
        if not skills:
            raise ValueError(f"persona {persona!r} lists no skills: the skill host has nothing to run")
        return skill_host_identity(site, name, skills, SKILL_HOST_INSTANCE)

    def child_env(
        self, service: str, persona: str, personas_dir: Path, site: str | None = None
    ) -> dict[str, str]:
        """HUXLEY_NATS_CREDS and HUXLEY_NATS_INBOX_PREFIX of one service (at a room)."""
        identity = self.identity(service, persona, personas_dir, site)
        return connection_env(self.store, identity, int(time.time()))

    def observer(self, settings: HuxleySettings) -> HuxleySettings:
        """The watchdog watches health as the read-only observer."""
        path = self.store.creds_path(self.site, "observer")
        return settings.model_copy(
            update={"nats_creds": path, "nats_inbox_prefix": inbox_prefix("observer", self.site)}
        )
