"""`huxley auth compose`: the bus credentials of a compose deployment.

Run by compose's one-shot `init` service on every `docker compose up`. The
keys stay in the `auth` volume (only `init` mounts it); each identity's creds
are copied into a directory of its own, `<out>/<identity>/nats.creds`, which
compose backs with one volume per identity, so a container mounts its own
creds and nothing else. `<out>/nats/` gets the server config, with the
operator JWT's path as the nats container sees it, and `<out>/observer/`
also gets a nats CLI context for nats-box.

Docker Engine 20.10 (Debian's) has no volume subpaths, hence one volume per
identity rather than one volume with a subdirectory each.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from huxley_cli.auth import AuthStore, nats_context, write_secret
from huxley_cli.compose_skill import parse_container_spec
from huxley_cli.up_sites import parse_sites
from huxley_runtime.settings import HuxleySettings
from huxley_wire.permissions import (
    MULTI_SITE_ROLES,
    Identity,
    Role,
    inbox_prefix,
    service_identity,
    skill_identity,
)

CREDS_FILE = "nats.creds"
JETSTREAM_DIR = Path("/data")  # the nats container's data volume


def parse_owner(text: str) -> tuple[int, int]:
    uid, _, gid = text.partition(":")
    return int(uid), int(gid or uid)


def _give(path: Path, owner: tuple[int, int] | None) -> None:
    """Hand a written file to the user that reads it (it is 0600); only root
    can. Its directory stays root's: `init` needs no DAC_OVERRIDE to replace it."""
    if owner is not None and os.geteuid() == 0:
        os.chown(path, *owner)


def export_creds(store: AuthStore, identity: Identity, out: Path, now: int) -> Path:
    """Always rewritten (atomically): reading the old copy, owned by the
    service's user, would need a capability `init` does not have."""
    target = out / identity.name / CREDS_FILE
    write_secret(target, store.ensure(identity, now).read_text())
    return target


def export_server(store: AuthStore, out: Path, mounted_at: Path, jetstream_dir: Path = JETSTREAM_DIR) -> Path:
    """The server config and operator JWT, pointing at `mounted_at` (where the
    nats container mounts `<out>/nats`). JetStream is enabled here rather than
    by flags, which a reload (after a revocation) does not keep."""
    here = out / "nats"
    jwt = here / "operator.jwt"
    write_secret(jwt, store.operator_jwt_path.read_text())
    config = store.config_path.read_text().replace(
        f"operator: {json.dumps(str(store.operator_jwt_path))}",
        f"operator: {json.dumps(str(mounted_at / 'operator.jwt'))}",
    )
    config += f"jetstream: {{store_dir: {json.dumps(str(jetstream_dir))}}}\n"
    path = here / "nats-server.conf"
    write_secret(path, config)
    return path


def bundle(
    store: AuthStore,
    site: str,
    persona: str,
    skills: list[str],
    out: Path,
    *,
    nats_mount: Path,
    jetstream_dir: Path = JETSTREAM_DIR,
    nats_url: str,
    now: int,
    owner: tuple[int, int] | None = None,
    root_owned: tuple[str, ...] = ("observer",),
    also_sites: tuple[str, ...] = (),
    room: bool = False,
) -> list[Path]:
    """Every file the deployment needs; idempotent (unchanged creds are kept).
    `also_sites`: the home's further rooms, which its storage, observer and
    admin cover. `room`: one more room's creds only (docker-compose.site.yml):
    its focus, bridge, audio-io and skills, no server config."""
    from huxley_cli.auth_cmd import core_identities  # auth_cmd registers this command

    store.init(now)
    skill_ids = [parse_container_spec(site, persona, spec) for spec in skills]
    if room:
        rooms = [service_identity(role, site) for role in (Role.FOCUS, Role.BRIDGE, Role.AUDIO_IO)]
        written: list[Path] = []
        for identity in rooms + skill_ids:
            written.append(export_creds(store, identity, out, now))
            _give(written[-1], owner)
        return written
    others = tuple(s for s in also_sites if s != site)
    home = [
        replace(i, also_sites=others) if others and i.role in MULTI_SITE_ROLES else i
        for i in core_identities(site)
    ]
    identities = home + skill_ids
    written = [export_server(store, out, nats_mount, jetstream_dir)]
    for identity in identities:
        path = export_creds(store, identity, out, now)
        written.append(path)
        if identity.name not in root_owned:
            _give(path, owner)
    # nats-box (the observer's consumer) runs as root: its files stay root's.
    observer = out / "observer"
    context = nats_context(nats_url, observer / CREDS_FILE, inbox_prefix("observer", site))
    context["creds"] = str(Path("/huxley-observer") / CREDS_FILE)
    written.append(observer / "huxley.json")
    write_secret(written[-1], json.dumps(context, indent=2) + "\n")
    return written


def compose(
    out: Annotated[Path, typer.Option(help="Where each identity's directory goes")],
    skill: Annotated[
        list[str] | None,
        typer.Option(help="A skill container (repeat): its skill, or <name>=<skill>,<skill>"),
    ] = None,
    owner: Annotated[str, typer.Option(help="uid[:gid] that reads the services' creds")] = "10001:10001",
    nats_mount: Annotated[Path, typer.Option(help="Where the nats container mounts <out>/nats")] = Path(
        "/etc/huxley-nats"
    ),
    nats_store: Annotated[
        Path, typer.Option(help="The nats container's JetStream directory")
    ] = JETSTREAM_DIR,
    nats_url: Annotated[
        str, typer.Option(help="The bus URL inside the compose network")
    ] = "nats://nats:4222",
    data_dir: Annotated[Path | None, typer.Option(help="Where the keys live (<data_dir>/auth)")] = None,
    sites: Annotated[
        str, typer.Option(help="The home's further rooms (comma-separated): its storage serves them too")
    ] = "",
    room: Annotated[
        bool, typer.Option("--room", help="One more room's creds only (docker-compose.site.yml)")
    ] = False,
) -> None:
    """Keys, server config and one creds directory per identity, for compose."""
    settings = HuxleySettings()
    for spec in skill or []:
        try:
            parse_container_spec(settings.site, settings.persona, spec)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--skill") from exc
    store = AuthStore.of(data_dir or settings.data_dir)
    paths = bundle(
        store,
        settings.site,
        settings.persona,
        skill or [],
        out,
        nats_mount=nats_mount,
        jetstream_dir=nats_store,
        nats_url=nats_url,
        now=int(time.time()),
        owner=parse_owner(owner),
        also_sites=tuple(parse_sites(sites, settings.site)),
        room=room,
    )
    for path in paths:
        print(f"huxley: {path}")


def compose_skill(
    identity: Annotated[str, typer.Argument(help="The skill container's identity (skill-<name>)")],
    out: Annotated[Path, typer.Option(help="Where the identity's directory goes")],
    skill: Annotated[list[str], typer.Option(help="A skill it runs (repeat)")],
    owner: Annotated[str, typer.Option(help="uid[:gid] that reads the creds")] = "10001:10001",
    data_dir: Annotated[Path | None, typer.Option(help="Where the keys live (<data_dir>/auth)")] = None,
) -> None:
    """One added skill container's creds, for `huxley skill add` (run in a
    one-shot container that mounts the keys). The server needs no reload: it
    trusts whatever the account key signs."""
    settings = HuxleySettings()
    store = AuthStore.of(data_dir or settings.data_dir)
    now = int(time.time())
    store.init(now)
    wanted = skill_identity(settings.site, settings.persona, tuple(skill), identity)
    target = export_creds(store, wanted, out, now)
    _give(target, parse_owner(owner))
    print(f"huxley: {target}")


def compose_revoke(
    identity: Annotated[str, typer.Argument(help="The identity to withdraw")],
    out: Annotated[Path, typer.Option(help="Where the server config directory (nats/) goes")],
    nats_mount: Annotated[Path, typer.Option(help="Where the nats container mounts <out>/nats")] = Path(
        "/etc/huxley-nats"
    ),
    nats_store: Annotated[
        Path, typer.Option(help="The nats container's JetStream directory")
    ] = JETSTREAM_DIR,
    data_dir: Annotated[Path | None, typer.Option(help="Where the keys live (<data_dir>/auth)")] = None,
) -> None:
    """Revoke an identity and rewrite the server config nats reads, for
    `huxley skill remove`; nats-server applies it on reload (SIGHUP)."""
    settings = HuxleySettings()
    store = AuthStore.of(data_dir or settings.data_dir)
    if not store.revoke(settings.site, identity, int(time.time())):
        print(f"huxley: no creds for {identity!r}; nothing to revoke")
    export_server(store, out, nats_mount, nats_store)
    print(f"huxley: revoked {identity}; reload nats-server")
