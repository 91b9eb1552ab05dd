"""What `huxley skill add` makes of a published `huxley-skill-*` package, as
plain data: the names of its image, container, identity and volumes, the
Dockerfile that builds it FROM the project's image, and the hardened shape of
its container (the compose skill services' shape). Pure; skill_cmd.py talks
to the Docker engine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

PREFIX = "huxley-skill-"
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
PACKAGE_LABEL = "huxley.skill.package"
SKILLS_LABEL = "huxley.skill.skills"
AUTOHEAL_LABEL = "huxley.autoheal"
USER = "10001:10001"
CREDS_MOUNT = "/run/huxley"
SECOND_NS = 1_000_000_000

# PEP 508 name, and an optional exact pin: what runs is what was asked for.
_SPEC = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:==(?P<version>[A-Za-z0-9.+!_-]+))?$")


@dataclass(frozen=True)
class Package:
    name: str  # normalized (PEP 503): huxley-skill-news
    version: str | None

    @property
    def spec(self) -> str:
        return self.name if self.version is None else f"{self.name}=={self.version}"

    @property
    def short(self) -> str:
        return self.name.removeprefix(PREFIX)


def parse_package(text: str) -> Package:
    """`huxley-skill-news` or `huxley-skill-news==0.1.0`; anything else (a URL,
    a path, a range, another project's package) is refused with the reason."""
    found = _SPEC.match(text.strip())
    if found is None:
        raise ValueError(f"{text!r} is not a package name, optionally pinned with ==VERSION")
    name = re.sub(r"[-_.]+", "-", found["name"]).lower()
    if not name.startswith(PREFIX) or name == PREFIX.rstrip("-") or len(name) <= len(PREFIX):
        raise ValueError(f"{text!r}: only published skills, named {PREFIX}<name>, are added this way")
    return Package(name, found["version"])


@dataclass(frozen=True)
class Names:
    """Everything `add` creates for a package in a compose project, by name,
    so `remove` finds it again."""

    project: str
    package: Package

    @property
    def identity(self) -> str:
        return f"skill-{self.package.short}"

    @property
    def image(self) -> str:
        return f"huxley-skill-{self.package.short}:{self.project}"

    @property
    def container(self) -> str:
        return f"{self.project}-skill-{self.package.short}"

    @property
    def creds_volume(self) -> str:
        return f"{self.project}_creds-{self.identity}"

    @property
    def data_volume(self) -> str:
        return f"{self.project}_data-{self.identity}"

    def labels(self, skills: list[str] | None = None) -> dict[str, str]:
        labels = {PROJECT_LABEL: self.project, SERVICE_LABEL: self.identity, PACKAGE_LABEL: self.package.name}
        if skills is not None:
            labels[SKILLS_LABEL] = ",".join(skills)
        return labels


def dockerfile(base_image: str, package: Package) -> str:
    """The skill image: ours plus the package, installed into our venv. The
    packages already there are held at their versions (ours of huxley-sdk
    above all): a skill that needs others fails to build, with the resolver's
    reason, rather than replacing them."""
    venv = "/opt/huxley/bin/python"
    return (
        f"FROM {base_image}\n"
        "USER root\n"
        f"RUN /opt/uv/bin/uv pip list --python {venv} --format freeze > /tmp/held.txt \\\n"
        f"    && /opt/uv/bin/uv pip install --python {venv} --no-cache -c /tmp/held.txt '{package.spec}' \\\n"
        "    && rm /tmp/held.txt\n"
        "USER huxley\n"
        f'LABEL {PACKAGE_LABEL}="{package.name}"\n'
    )


# Run in the built image: the package's skills (its `huxley.skills` entry points).
LIST_SKILLS = (
    "import json, sys, importlib.metadata as m\n"
    "eps = m.distribution(sys.argv[1]).entry_points\n"
    "print(json.dumps(sorted(ep.name for ep in eps if ep.group == 'huxley.skills')))\n"
)

# What a skill container takes from the project's own containers' environment.
INHERITED_ENV = ("HUXLEY_NATS_URL", "HUXLEY_SITE", "HUXLEY_PERSONA", "HUXLEY_LOG_JSON")


def inherited_env(env_list: list[str]) -> dict[str, str]:
    """The bus and household settings out of a container's `KEY=VALUE` list."""
    pairs = dict(item.split("=", 1) for item in env_list if "=" in item)
    return {key: pairs[key] for key in INHERITED_ENV if key in pairs}


def container_spec(names: Names, skills: list[str], env: dict[str, str], network: str) -> dict[str, Any]:
    """`containers.run` keyword arguments: uid 10001, no capabilities, a
    read-only root, its own creds (read-only) and data volumes and nothing
    else, restarted by Docker on exit and by autoheal on failed health."""
    return {
        "image": names.image,
        "command": ["huxley-skill-host"],
        "name": names.container,
        "detach": True,
        "user": USER,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "read_only": True,
        "tmpfs": {"/tmp": ""},
        "restart_policy": {"Name": "unless-stopped"},
        "network": network,
        "labels": {**names.labels(skills), AUTOHEAL_LABEL: "true"},
        "environment": {
            **env,
            "HUXLEY_NATS_CREDS": f"{CREDS_MOUNT}/nats.creds",
            "HUXLEY_SKILLS": ",".join(skills),
            "HUXLEY_INSTANCE": names.identity,
        },
        "volumes": {
            names.data_volume: {"bind": "/data", "mode": "rw"},
            names.creds_volume: {"bind": CREDS_MOUNT, "mode": "ro"},
        },
        "healthcheck": {
            "test": ["CMD", "huxley", "ping", "skill-host"],
            "interval": 30 * SECOND_NS,
            "timeout": 30 * SECOND_NS,
            "retries": 3,
            "start_period": 120 * SECOND_NS,
        },
    }


def creds_job(names: Names, skills: list[str], auth_volume: str) -> dict[str, Any]:
    """The one-shot that mints the skill's identity with the project's keys
    (the `auth` volume, which only such one-shots mount) into its creds
    volume, owned by the skill's user. Root only for that chown, as `init`."""
    command = ["huxley", "auth", "compose-skill", names.identity, "--out", "/creds"]
    for skill in skills:
        command += ["--skill", skill]
    return _job(
        command,
        {
            auth_volume: {"bind": "/data/auth", "mode": "rw"},
            names.creds_volume: {"bind": f"/creds/{names.identity}", "mode": "rw"},
        },
    )


def revoke_job(names: Names, auth_volume: str, nats_config_volume: str) -> dict[str, Any]:
    """The one-shot that revokes the skill's identity and rewrites the server
    config nats reads (reloaded after it)."""
    return _job(
        ["huxley", "auth", "compose-revoke", names.identity, "--out", "/creds"],
        {
            auth_volume: {"bind": "/data/auth", "mode": "rw"},
            nats_config_volume: {"bind": "/creds/nats", "mode": "rw"},
        },
    )


def _job(command: list[str], volumes: dict[str, dict[str, str]]) -> dict[str, Any]:
    return {
        "command": command,
        "user": "0:0",
        "cap_drop": ["ALL"],
        "cap_add": ["CHOWN"],
        "security_opt": ["no-new-privileges:true"],
        "read_only": True,
        "network_disabled": True,
        "volumes": volumes,
        "remove": True,
    }
