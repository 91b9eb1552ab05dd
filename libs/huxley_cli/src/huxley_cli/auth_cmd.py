"""`huxley init` and `huxley auth ...`: the bus credentials of a home.

`init` writes the keys, the nats-server config and one creds file per core
service, the observer and the admin tool (idempotent: run it on every start).
`auth add-skill` mints a skill container's creds and prints its compose
service; `auth observer` writes a nats CLI context for the read-only identity;
`auth rotate` and `auth revoke` replace or withdraw one identity's creds.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from huxley_cli.auth import AuthStore, nats_context, write_secret
from huxley_cli.compose_auth import compose as compose_command
from huxley_cli.compose_auth import compose_revoke, compose_skill
from huxley_cli.compose_skill import compose_snippet
from huxley_cli.natsserver.reloadable import reload_running
from huxley_runtime.settings import HuxleySettings
from huxley_wire.permissions import (
    SERVICE_ROLES,
    Identity,
    Role,
    grant_for,
    satellite_identity,
    service_identity,
    skill_identity,
)

auth_app = typer.Typer(help="Bus credentials: skills, observers, rotation.", no_args_is_help=True)

DataDir = Annotated[Path | None, typer.Option(help="Where state lives (default: HUXLEY_DATA_DIR or ./data)")]


def _store(data_dir: Path | None) -> tuple[HuxleySettings, AuthStore]:
    settings = HuxleySettings()
    return settings, AuthStore.of(data_dir or settings.data_dir)


def core_identities(site: str) -> list[Identity]:
    """What `huxley init` mints: the services, the observer and the admin tool."""
    identities = [service_identity(role, site) for role in SERVICE_ROLES if role is not Role.SKILL]
    identities.append(Identity(Role.OBSERVER, site, "observer"))
    identities.append(Identity(Role.ADMIN, site, "admin"))
    return identities


def init_home(store: AuthStore, site: str, now: int) -> list[Path]:
    store.init(now)
    return [store.ensure(identity, now) for identity in core_identities(site)]


def init(data_dir: DataDir = None) -> None:
    """Generate the bus keys, the nats-server config and the core creds (idempotent)."""
    settings, store = _store(data_dir)
    paths = init_home(store, settings.site, int(time.time()))
    print(f"huxley: nats-server config {store.config_path}")
    for path in paths:
        print(f"huxley: creds {path}")


@auth_app.command("add-skill")
def add_skill(
    skill: Annotated[str, typer.Argument(help="The skill's name (its entry point); several: a,b,c")],
    persona: Annotated[str | None, typer.Option(help="Persona (default: HUXLEY_PERSONA)")] = None,
    instance: Annotated[
        str | None, typer.Option(help="Identity (and HUXLEY_INSTANCE) of a container running several skills")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Mint a skill container's creds and print what docker-compose.yml needs
    for it (init's --skill and volume, the service, its volumes). One
    container running several skills gets one identity covering them all."""
    settings, store = _store(data_dir)
    now = int(time.time())
    store.init(now)
    skills = tuple(dict.fromkeys(name.strip() for name in skill.split(",") if name.strip()))
    if not skills:
        raise typer.BadParameter("name at least one skill")
    identity = skill_identity(settings.site, persona or settings.persona, skills, instance)
    path = store.ensure(identity, now)
    print(f"# creds outside compose: {path} (HUXLEY_NATS_CREDS of this container only)")
    print(compose_snippet(identity), end="")


@auth_app.command()
def observer(
    url: Annotated[str, typer.Option(help="The bus the context points at")] = "nats://127.0.0.1:4222",
    context_dir: Annotated[Path, typer.Option(help="nats CLI context directory")] = Path(
        "~/.config/nats/context"
    ),
    name: Annotated[str, typer.Option(help="Context name")] = "huxley",
    hear_mic: Annotated[bool, typer.Option(help="Also let it see mic audio")] = False,
    data_dir: DataDir = None,
) -> None:
    """Write a nats CLI context for the read-only observer:
    `nats --context huxley sub 'huxley.>'`, `nats --context huxley micro ls`."""
    settings, store = _store(data_dir)
    now = int(time.time())
    store.init(now)
    identity = Identity(
        Role.OBSERVER, settings.site, "observer-mic" if hear_mic else "observer", hear_mic=hear_mic
    )
    creds = store.ensure(identity, now)
    target = context_dir.expanduser() / f"{name}.json"
    write_secret(
        target, json.dumps(nats_context(url, creds, grant_for(identity).inbox_prefix), indent=2) + "\n"
    )
    print(f"huxley: nats context {target}: nats --context {name} sub 'huxley.>'")


@auth_app.command("satellite")
def satellite_creds(
    site: Annotated[str | None, typer.Option(help="The room's site (default: HUXLEY_SITE)")] = None,
    data_dir: DataDir = None,
) -> None:
    """Mint a room device's leaf-node creds (its site's audio-io subjects only);
    copy the file to the device for `huxley satellite --creds`."""
    settings, store = _store(data_dir)
    now = int(time.time())
    store.init(now)
    path = store.ensure(satellite_identity(site or settings.site), now)
    print(f"huxley: satellite creds {path}")


@auth_app.command()
def rotate(
    identity: Annotated[str, typer.Argument(help="The identity's name (e.g. skill-timers, focus)")],
    data_dir: DataDir = None,
) -> None:
    """New creds for an identity; its old creds are revoked (reload nats-server)."""
    settings, store = _store(data_dir)
    target = store.identity(settings.site, identity)
    if target is None:
        raise typer.BadParameter(f"no creds for {identity!r} under {store.root}")
    path = store.mint(target, int(time.time()))
    print(f"huxley: new creds {path}; reload nats-server (nats-server --signal reload) to refuse the old")


@auth_app.command()
def revoke(
    identity: Annotated[str, typer.Argument(help="The identity's name")],
    data_dir: DataDir = None,
) -> None:
    """Withdraw an identity's creds (reload nats-server to apply)."""
    settings, store = _store(data_dir)
    if not store.revoke(settings.site, identity, int(time.time())):
        raise typer.BadParameter(f"no creds for {identity!r}")
    pid = reload_running((data_dir or settings.data_dir).resolve())
    if pid is None:
        print(f"huxley: revoked {identity}; the next nats-server start refuses its creds")
    else:
        print(
            f"huxley: revoked {identity}; reloaded the running nats-server (pid {pid}): its creds are refused"
        )


auth_app.command("compose")(compose_command)
auth_app.command("compose-skill")(compose_skill)
auth_app.command("compose-revoke")(compose_revoke)
