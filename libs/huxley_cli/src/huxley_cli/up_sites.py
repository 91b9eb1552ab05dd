"""`huxley up --sites kitchen,bedroom`: several rooms on one bus.

Pure planning, no processes: which children run and with which environment.
Each room (site) gets its own focus, skill-host, realtime-bridge and audio-io,
so a timer set in the kitchen fires in the kitchen; one storage serves every
room (HUXLEY_STORAGE_SITES) and keeps each room's data apart
(huxley_storage.scope). The first site is the home's own: storage, the
observer and the admin tool are minted there, covering the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from huxley_cli.supervisor import ChildSpec
from huxley_wire.subjects import token

# The services one room runs (storage is the home's, shared).
ROOM_SERVICES = ("focus", "skill-host", "realtime-bridge", "audio-io")
SHARED_SERVICES = ("storage",)


def parse_sites(text: str | None, default: str) -> list[str]:
    """`kitchen,bedroom` -> ["kitchen", "bedroom"] (checked, no repeats); empty: the default site."""
    names = [name.strip() for name in (text or "").split(",") if name.strip()]
    return list(dict.fromkeys(token(name, "site") for name in names)) or [default]


def sites_file(data_dir: Path) -> Path:
    """Where a running `huxley up` writes its rooms (`huxley status` reads it)."""
    return data_dir / "run" / "sites"


def read_sites(data_dir: Path) -> list[str]:
    path = sites_file(data_dir)
    if not path.is_file():
        return []
    try:
        return parse_sites(path.read_text().strip(), "")
    except ValueError:
        return []


def child_name(service: str, site: str, sites: list[str]) -> str:
    """A room's child is `<service>@<site>` once there are several rooms."""
    return service if len(sites) == 1 else f"{service}@{site}"


def audio_port(base: int, index: int) -> int:
    """Each room's web gateway on its own port: the base, then base+1, ..."""
    return 0 if base == 0 else base + index


def room_lines(sites: list[str], web_port: int) -> str:
    """What the banner says of the rooms: each with its web client's port."""
    return ", ".join(
        f"{site} (web :{audio_port(web_port, i)})" if web_port else site for i, site in enumerate(sites)
    )


def room_specs(
    modules: Mapping[str, str],
    python: str,
    env: Mapping[str, str],
    sites: list[str],
    auth_env: Mapping[tuple[str, str], Mapping[str, str]],
    web_port: int,
) -> list[ChildSpec]:
    """Every child, storage first, then each room's services in `modules` order.
    `auth_env[(service, site)]` is the child's creds and inbox prefix."""
    home = sites[0]
    specs: list[ChildSpec] = []
    for service in SHARED_SERVICES:
        child_env = {**env, "HUXLEY_SITE": home, **auth_env[(service, home)]}
        if len(sites) > 1:
            child_env["HUXLEY_STORAGE_SITES"] = ",".join(sites[1:])
        specs.append(
            ChildSpec(service, [python, "-m", modules[service]], child_env, health=service, site=home)
        )
    for index, site in enumerate(sites):
        for service, module in modules.items():
            if service in SHARED_SERVICES:
                continue
            child_env = {**env, "HUXLEY_SITE": site, **auth_env[(service, site)]}
            if service == "audio-io" and len(sites) > 1:
                child_env["HUXLEY_WEB_PORT"] = str(audio_port(web_port, index))
            if service == "skill-host" and index > 0 and "HUXLEY_DATA_DIR" in env:
                # Its injects in flight are its own: a shared outbox would be
                # re-sent by the other room's host at its start (the first
                # room keeps the one-room home's, like storage does).
                child_env["HUXLEY_INJECT_OUTBOX_DIR"] = str(Path(env["HUXLEY_DATA_DIR"]) / "outbox" / site)
            name = child_name(service, site, sites)
            specs.append(ChildSpec(name, [python, "-m", module], child_env, health=service, site=site))
    return specs
