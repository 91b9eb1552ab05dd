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
from pathlib import Path
from typing import Annotated

import typer

from huxley_cli.auth import AuthStore, nats_context, write_secret
from huxley_cli.compose_skill import parse_container_spec
from huxley_runtime.settings import HuxleySettings
from huxley_wire.permissions import Identity, inbox_prefix

CREDS_FILE = "nats.creds"


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


def export_server(store: AuthStore, out: Path, mounted_at: Path) -> Path:
    """The server config and operator JWT, pointing at `mounted_at` (where the
    nats container mounts `<out>/nats`)."""
    here = out / "nats"
    jwt = here / "operator.jwt"
    write_secret(jwt, store.operator_jwt_path.read_text())
    config = store.config_path.read_text().replace(
        f"operator: {json.dumps(str(store.operator_jwt_path))}",
        f"operator: {json.dumps(str(mounted_at / 'operator.jwt'))}",
    )
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
    nats_url: str,
    now: int,
    owner: tuple[int, int] | None = None,
    root_owned: tuple[str, ...] = ("observer",),
) -> list[Path]:
    """Every file the deployment needs; idempotent (unchanged creds are kept)."""
    from huxley_cli.auth_cmd import core_identities, init_home  # auth_cmd registers this command

    init_home(store, site, now)
    identities = core_identities(site) + [parse_container_spec(site, persona, spec) for spec in skills]
    written = [export_server(store, out, nats_mount)]
    for identity in identities:
        path = export_creds(store, identity, out, now)
        written.append(path)
        if identity.name not in root_owned:
            _give(path, owner)
    # nats-box (the observer's consumer) runs as root: its files stay root's.
    observer = out / "observer"
    context = nats_context(nats_url, observer / CREDS_FILE, inbox_prefix("observer"))
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
    nats_url: Annotated[
        str, typer.Option(help="The bus URL inside the compose network")
    ] = "nats://nats:4222",
    data_dir: Annotated[Path | None, typer.Option(help="Where the keys live (<data_dir>/auth)")] = None,
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
        nats_url=nats_url,
        now=int(time.time()),
        owner=parse_owner(owner),
    )
    for path in paths:
        print(f"huxley: {path}")
