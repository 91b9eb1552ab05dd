"""A skill container in docker-compose.yml: how `init` names it
(`--skill=<spec>`) and the compose pieces `huxley auth add-skill` prints.

The printed service is what docker-compose.yml's own skill services are (a
test loads both and compares them): the shared `x-huxley` base (uid 10001,
no capabilities, read-only root), its own creds volume mounted read-only,
its own data volume for its secrets and files, and none of the databases.
"""

from __future__ import annotations

from huxley_wire.permissions import Identity, skill_identity
from huxley_wire.subjects import token

CREDS_MOUNT = "/run/huxley"  # where x-huxley's HUXLEY_NATS_CREDS points
INIT_CREDS_OUT = "/creds"  # `init`'s --out


def container_spec(identity: Identity) -> str:
    """`init`'s `--skill` value for a skill container: its skill, or
    `<name>=<skill>,<skill>` for a container named otherwise (several skills)."""
    skills = ",".join(identity.skills)
    if len(identity.skills) == 1 and identity.name == f"skill-{skills}":
        return skills
    return f"{identity.name}={skills}"


def parse_container_spec(site: str, persona: str, spec: str) -> Identity:
    """The identity of `init --skill=<spec>` (the inverse of `container_spec`)."""
    name, _, listed = spec.rpartition("=")
    skills = tuple(dict.fromkeys(s.strip() for s in listed.split(",") if s.strip()))
    if not skills:
        raise ValueError(f"--skill {spec!r} names no skill: use <skill> or <name>=<skill>,<skill>")
    for skill in skills:
        token(skill, "skill")
    return skill_identity(site, persona, skills, name or None)


def compose_snippet(identity: Identity) -> str:
    """What to add to docker-compose.yml for this skill container, as YAML
    pieces under a comment saying where each goes."""
    name = identity.name
    creds, data = f"creds-{name}", f"data-{name}"
    return (
        f"# {name}: four additions to docker-compose.yml; `init` mints its creds\n"
        "# into its own volume on the next `docker compose up`.\n"
        "# 1. services.init.command, append:\n"
        f"      - --skill={container_spec(identity)}\n"
        "# 2. services.init.volumes, append:\n"
        f"      - {creds}:{INIT_CREDS_OUT}/{name}\n"
        "# 3. under services:\n"
        f"  {name}:\n"
        "    <<: *huxley\n"
        '    command: ["huxley-skill-host"]\n'
        "    depends_on: *after-core\n"
        "    environment:\n"
        "      <<: *env\n"
        f"      HUXLEY_SKILLS: {','.join(identity.skills)}\n"
        f"      HUXLEY_INSTANCE: {name}\n"
        "    volumes:\n"
        f"      - {data}:/data  # its own secrets, files and inject outbox\n"
        f"      - {creds}:{CREDS_MOUNT}:ro  # its own creds only\n"
        "    healthcheck:\n"
        "      <<: *health\n"
        '      test: ["CMD", "huxley", "ping", "skill-host"]\n'
        "# 4. under volumes:\n"
        f"  {creds}:\n"
        f"  {data}:\n"
    )
