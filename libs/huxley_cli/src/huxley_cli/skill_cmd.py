"""`huxley skill add|remove|list`: published skills as containers of a
running compose deployment, through the Docker Engine API.

`add` builds an image FROM the project's own (which has skill-host) with the
package installed, mints the container's own bus identity with the project's
keys (a one-shot container mounting the `auth` volume, as compose's `init`),
and starts it on the project's network in the compose skill services' shape.
`remove` stops and removes it, revokes its identity (nats-server reloads),
and removes its volumes and image tag. Run on the host, by whoever may use
the Docker engine; the web gateway has no such access (docs/deploy.md).
"""

from __future__ import annotations

import json
from io import BytesIO
from typing import Annotated, Any

import docker
import docker.errors
import typer
from docker.models.containers import Container

from huxley_cli.skill_image import (
    LIST_SKILLS,
    PACKAGE_LABEL,
    PROJECT_LABEL,
    SERVICE_LABEL,
    SKILLS_LABEL,
    Names,
    Package,
    container_spec,
    creds_job,
    dockerfile,
    inherited_env,
    parse_package,
    revoke_job,
)

STOP_TIMEOUT_S = 10

skill_app = typer.Typer(
    help="Published skills as containers of a compose deployment (on the host).", no_args_is_help=True
)

Project = Annotated[
    str,
    typer.Option(
        envvar="COMPOSE_PROJECT_NAME", help="The compose project (default: huxley, docker-compose.yml's name)"
    ),
]


class SkillError(Exception):
    """A refusal or failure with a message for the operator."""


class Deployment:
    """A running compose project, as the Docker engine shows it."""

    def __init__(self, client: docker.DockerClient, project: str) -> None:
        self.client = client
        self.project = project

    @classmethod
    def connect(cls, project: str) -> Deployment:
        try:
            client = docker.from_env()
            client.ping()
        except docker.errors.DockerException as exc:
            raise SkillError(f"no Docker engine ({exc}): is dockerd running, may you use it?") from exc
        return cls(client, project)

    def containers(self, **labels: str) -> list[Container]:
        wanted = [f"{PROJECT_LABEL}={self.project}", *(f"{k}={v}" for k, v in labels.items())]
        return list(self.client.containers.list(all=True, filters={"label": wanted}))

    def service(self, name: str) -> Container:
        found = self.containers(**{SERVICE_LABEL: name})
        if not found:
            raise SkillError(
                f"compose project {self.project!r} has no {name!r} container: "
                f"start it first (docker compose -p {self.project} up -d), or name it with --project"
            )
        return found[0]

    def volume(self, name: str) -> str:
        return f"{self.project}_{name}"

    def one_shot(self, spec: dict[str, Any], image: str, env: dict[str, str]) -> str:
        try:
            out = self.client.containers.run(image, environment=env, **spec)
        except docker.errors.ContainerError as exc:
            raise SkillError(f"{' '.join(spec['command'])} failed: {exc.stderr!r}") from exc
        return out.decode() if isinstance(out, bytes) else str(out)


def _build(deployment: Deployment, names: Names, base: str, quiet: bool) -> None:
    text = dockerfile(base, names.package).encode()
    try:
        _, log = deployment.client.images.build(
            fileobj=BytesIO(text), tag=names.image, rm=True, forcerm=True, pull=False
        )
    except docker.errors.BuildError as exc:
        lines = [str(step.get("stream") or step.get("error") or "").rstrip() for step in exc.build_log]
        tail = "\n".join(line for line in lines if line)[-2000:]
        raise SkillError(f"building {names.image} with {names.package.spec} failed:\n{tail}") from exc
    if not quiet:
        for step in log:
            line = str(step.get("stream") or "").rstrip() if isinstance(step, dict) else ""
            if line:
                typer.echo(f"  {line}")


def _skills_of(deployment: Deployment, names: Names) -> list[str]:
    out = deployment.client.containers.run(
        names.image,
        ["python3", "-c", LIST_SKILLS, names.package.name],
        remove=True,
        network_disabled=True,
        read_only=True,
    )
    skills = json.loads(out)
    if not isinstance(skills, list) or not skills:
        raise SkillError(f"{names.package.name} declares no skill (no `huxley.skills` entry point)")
    return [str(skill) for skill in skills]


def add_skill(deployment: Deployment, package: Package, quiet: bool = False) -> tuple[Names, list[str]]:
    names = Names(deployment.project, package)
    if deployment.containers(**{SERVICE_LABEL: names.identity}):
        raise SkillError(
            f"{names.identity} already runs in project {deployment.project!r}; "
            f"`huxley skill remove {package.name}` first to replace it"
        )
    init = deployment.service("init")
    nats = deployment.service("nats")
    base = str(init.attrs["Config"]["Image"])
    env = inherited_env(list(init.attrs["Config"].get("Env") or []))
    network = next(iter(nats.attrs["NetworkSettings"]["Networks"]))
    typer.echo(f"huxley skill: building {names.image} FROM {base} with {package.spec}")
    _build(deployment, names, base, quiet)
    try:
        skills = _skills_of(deployment, names)
        for volume in (names.creds_volume, names.data_volume):
            deployment.client.volumes.create(volume, labels=names.labels())
        deployment.one_shot(creds_job(names, skills, deployment.volume("auth")), base, env)
        container = deployment.client.containers.run(**container_spec(names, skills, env, network))
    except Exception:
        _undo(deployment, names, revoke=True)
        raise
    typer.echo(
        f"huxley skill: {names.container} started ({', '.join(skills)}; identity {names.identity}, "
        f"network {network}, id {container.short_id})"
    )
    return names, skills


def _undo(deployment: Deployment, names: Names, revoke: bool) -> list[str]:
    """Everything `add` made for these names, gone; what was removed."""
    done: list[str] = []
    for container in deployment.containers(**{PACKAGE_LABEL: names.package.name}):
        container.stop(timeout=STOP_TIMEOUT_S)  # SIGTERM: the skill host tears its skills down
        container.remove(force=True)
        done.append(f"container {container.name}")
    if revoke:
        init = deployment.service("init")
        env = inherited_env(list(init.attrs["Config"].get("Env") or []))
        spec = revoke_job(names, deployment.volume("auth"), deployment.volume("nats-config"))
        deployment.one_shot(spec, str(init.attrs["Config"]["Image"]), env)
        deployment.service("nats").kill(signal="SIGHUP")  # nats-server reloads: the creds are refused
        done.append(f"identity {names.identity} (revoked)")
    for volume in (names.creds_volume, names.data_volume):
        try:
            deployment.client.volumes.get(volume).remove()
            done.append(f"volume {volume}")
        except docker.errors.NotFound:
            pass
    try:
        deployment.client.images.remove(names.image)
        done.append(f"image {names.image}")
    except docker.errors.ImageNotFound:
        pass
    return done


def remove_skill(deployment: Deployment, package: Package) -> list[str]:
    names = Names(deployment.project, package)
    if not deployment.containers(**{PACKAGE_LABEL: package.name}):
        try:
            deployment.client.images.get(names.image)
        except docker.errors.ImageNotFound:
            raise SkillError(f"{package.name} was not added to project {deployment.project!r}") from None
    return _undo(deployment, names, revoke=True)


def _run(action: str, text: str, project: str, **kwargs: Any) -> None:
    try:
        package = parse_package(text)
        deployment = Deployment.connect(project)
        if action == "add":
            add_skill(deployment, package, **kwargs)
        else:
            for line in remove_skill(deployment, package):
                typer.echo(f"huxley skill: removed {line}")
    except (SkillError, ValueError) as exc:
        typer.echo(f"huxley skill {action}: {exc}", err=True)
        raise typer.Exit(1) from None
    except docker.errors.APIError as exc:
        typer.echo(f"huxley skill {action}: the Docker engine refused: {exc.explanation or exc}", err=True)
        raise typer.Exit(1) from None


@skill_app.command("add")
def add(
    package: Annotated[str, typer.Argument(help="A published skill: huxley-skill-<name>[==VERSION]")],
    project: Project = "huxley",
    quiet: Annotated[bool, typer.Option(help="Do not print the image build")] = False,
) -> None:
    """Build the package into an image FROM the project's and start it as its
    own container with its own bus identity."""
    _run("add", package, project, quiet=quiet)


@skill_app.command("remove")
def remove(
    package: Annotated[str, typer.Argument(help="A skill added with `huxley skill add`")],
    project: Project = "huxley",
) -> None:
    """Stop and remove the skill's container, revoke its identity, and remove
    its volumes (its data too) and its image."""
    _run("remove", package, project)


@skill_app.command("list")
def list_skills(project: Project = "huxley") -> None:
    """The skills added with `huxley skill add`: package, skills, state."""
    try:
        deployment = Deployment.connect(project)
    except SkillError as exc:
        typer.echo(f"huxley skill list: {exc}", err=True)
        raise typer.Exit(1) from None
    for container in deployment.containers():
        labels = container.labels
        if PACKAGE_LABEL in labels and SKILLS_LABEL in labels:
            typer.echo(
                f"{labels[PACKAGE_LABEL]}\t{labels[SKILLS_LABEL]}\t{container.name}\t{container.status}"
            )
