"""Authentication in the tests: the session's nats-server trusts only the
credentials an `AuthStore` mints (operator mode), and every part a test runs
connects as its own identity, so a permission missing from
`huxley_wire.permissions` fails the test that needs it.

`running()` and `ServiceProcess` hand a service its own identity when the
settings or environment carry none; `SiteAuth` mints one on demand (the
harness stands in for the peers a test fakes; its rules live in
`huxley_cli.identities`, which the benches use too)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nats
import nats.errors

from huxley_cli import identities
from huxley_cli.auth import AuthStore
from huxley_wire.permissions import SERVICE_ROLES, Role

REPO = Path(__file__).resolve().parents[2]
PERSONAS = REPO / "personas"

# Set by the session fixture in tests/conftest.py.
STORE: AuthStore | None = None

# `python -m <module>` of each service, and the role it runs as.
MODULE_ROLES = {
    "huxley_storage": Role.STORAGE,
    "huxley_focus": Role.FOCUS,
    "huxley_bridge": Role.BRIDGE,
    "huxley_audio_io": Role.AUDIO_IO,
    "huxley_skill_host": Role.SKILL,
    "e2e.rig_audio": Role.AUDIO_IO,  # audio-io with a test hook (its own harness connection)
}


def store() -> AuthStore:
    assert STORE is not None, "the session nats-server fixture sets up the AuthStore"
    return STORE


class SiteAuth(identities.SiteAuth):
    """Identities at one site, minted on demand (the session's store, the
    repository's personas unless told otherwise)."""

    def __init__(self, site: str, auth_store: AuthStore | None = None) -> None:
        super().__init__(site, auth_store or store(), PERSONAS, label="test")


def role_of_service(name: str) -> Role:
    """The identity a service of this name runs as; test-only services
    (tests/runtime's) are fakes and run as the harness."""
    for role in SERVICE_ROLES:
        if str(role) == name:
            return role
    return Role.HARNESS


def with_identity(settings: Any, service_name: str) -> Any:
    """`settings` carrying the service's own creds, unless it has some."""
    if getattr(settings, "nats_creds", None):
        return settings
    role = role_of_service(service_name)
    options: dict[str, Any] = {}
    if role is Role.SKILL:
        options = {
            "skills": tuple(settings.skill_list()),
            "persona": str(settings.persona),
            "personas_dir": settings.personas_dir,
            "name": settings.instance,
        }
    if role is Role.STORAGE and getattr(settings, "storage_sites", ""):
        options = {"also_sites": tuple(s.strip() for s in settings.storage_sites.split(",") if s.strip())}
    return settings.model_copy(update=SiteAuth(settings.site).fields(role, **options))


def env_with_identity(module: str, env: dict[str, str]) -> dict[str, str]:
    """A service process's environment with its own creds, unless it has some."""
    role = MODULE_ROLES.get(module)
    if role is None or env.get("HUXLEY_NATS_CREDS") or "HUXLEY_SITE" not in env:
        return env
    options: dict[str, Any] = {}
    if role is Role.SKILL:
        skills = [s.strip() for s in env.get("HUXLEY_SKILLS", "").split(",") if s.strip()]
        options = {
            "skills": tuple(dict.fromkeys(skills)),
            "persona": env.get("HUXLEY_PERSONA", "basic"),
            "personas_dir": Path(env.get("HUXLEY_PERSONAS_DIR", str(PERSONAS))),
            "name": env.get("HUXLEY_INSTANCE", ""),
        }
    if role is Role.STORAGE and env.get("HUXLEY_STORAGE_SITES"):
        listed = env["HUXLEY_STORAGE_SITES"].split(",")
        options = {"also_sites": tuple(s.strip() for s in listed if s.strip())}
    return {**env, **SiteAuth(env["HUXLEY_SITE"]).env(role, **options)}


async def creds_refused(url: str, creds: Path) -> bool:
    """Whether the server at `url` turns these creds away (a revocation took)."""
    try:
        nc = await nats.connect(url, user_credentials=str(creds), allow_reconnect=False)
    except (nats.errors.Error, OSError):
        return True
    await nc.close()
    return False
