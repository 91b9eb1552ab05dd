"""The `huxley` command."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer
from nats.aio.client import Client

from huxley_cli.audio_cmd import audio_app
from huxley_cli.auth_cmd import auth_app, init
from huxley_cli.forking import ForkServer
from huxley_cli.natsserver import NatsServer, port_is_free
from huxley_cli.natsserver.reloadable import pid_file, start_home_server
from huxley_cli.satellite_cmd import satellite
from huxley_cli.skill_cmd import skill_app
from huxley_cli.status import discover, missing_services, render
from huxley_cli.storage_cmd import storage_app
from huxley_cli.supervisor import ChildSpec, Supervisor
from huxley_cli.tap import format_message
from huxley_cli.tool_bus import OBSERVER, run_file, tool_bus
from huxley_cli.up_auth import UpAuth
from huxley_cli.up_sites import ROOM_SERVICES, parse_sites, read_sites, room_lines, room_specs, sites_file
from huxley_cli.watchdog import WatchdogConfig
from huxley_runtime.rpc import gather_replies
from huxley_runtime.settings import HuxleySettings
from huxley_wire.codec import decode, encode
from huxley_wire.errors import WireError
from huxley_wire.messages.common import Health, HealthRequest
from huxley_wire.subjects import Subjects

app = typer.Typer(help="huxley-nats: a voice assistant as services on a NATS bus.", no_args_is_help=True)
app.add_typer(storage_app, name="storage")
app.add_typer(audio_app, name="audio")
app.add_typer(auth_app, name="auth")
app.add_typer(skill_app, name="skill")
app.command("init")(init)
app.command("satellite")(satellite)

STANDARD_NATS_PORT = 4222


def invoked_as(argv0: str, cwd: Path, on_path: str | None) -> str:
    """How to call this CLI again from another terminal: a fresh clone's
    `make up` runs `.venv/bin/huxley`, which is not on PATH there (`uv run`
    put it on PATH for us only), so a venv inside the working directory is
    named by its path; otherwise `huxley` if that is what PATH finds."""
    me = Path(argv0)
    if me.name != "huxley":
        return "huxley"  # python -m huxley_cli.main, say
    if me.parent == Path():
        return argv0  # found on PATH by name
    me = Path(os.path.abspath(me))
    with contextlib.suppress(ValueError):
        return str(me.relative_to(os.path.abspath(cwd)))
    if on_path is not None and Path(on_path).resolve() == me.resolve():
        return "huxley"
    return str(me)


# Module of each service, in start order.
SERVICE_MODULES = {
    "storage": "huxley_storage",
    "focus": "huxley_focus",
    "skill-host": "huxley_skill_host",
    "realtime-bridge": "huxley_bridge",
    "audio-io": "huxley_audio_io",
}


Creds = Annotated[
    Path | None,
    typer.Option(help="Creds file (default: HUXLEY_NATS_CREDS, else <data_dir>/auth/<site>/observer.creds)"),
]


async def _bus(
    nats_url: str | None, name: str, give_up_after_s: float = 3, creds: Path | None = None
) -> tuple[HuxleySettings, Client]:
    """Settings and a bus connection for a one-shot command, as the observer."""
    return await tool_bus(nats_url, name, OBSERVER, creds, give_up_after_s)


def _banner(lines: list[str]) -> None:
    width = max(len(line) for line in lines) + 4
    print("=" * width, flush=True)
    for line in lines:
        print(f"  {line}", flush=True)
    print("=" * width, flush=True)


def _offer_demo_book(persona_ref: str, personas_dir: Path, data: Path) -> tuple[str, ...]:
    """Offline, a fresh library gets a short spoken book so "play the book" works."""
    from huxley_cli.demo_book import ensure_demo_book, library_of
    from huxley_runtime.persona import load_persona

    library = library_of(load_persona(persona_ref, personas_dir), data)
    return () if library is None else ensure_demo_book(library).lines


def _up(
    persona: str | None,
    nats_url: str | None,
    nats_port: int | None,
    data_dir: Path | None,
    sites: str | None = None,
) -> Coroutine[Any, Any, int]:
    """`huxley up`'s run. The fork server is forked first, here, before the
    event loop exists (a process with a loop or threads must not fork): its
    imports then run beside the set-up (keys, nats-server)."""
    forks = ForkServer.start() if os.environ.get("HUXLEY_FORKSERVER", "1") != "0" else None
    return _closing(forks, _up_with(forks, persona, nats_url, nats_port, data_dir, sites))


async def _closing(forks: ForkServer | None, run: Coroutine[Any, Any, int]) -> int:
    try:
        return await run
    finally:
        if forks is not None:
            forks.close()


async def _up_with(
    forks: ForkServer | None,
    persona: str | None,
    nats_url: str | None,
    nats_port: int | None,
    data_dir: Path | None,
    sites: str | None = None,
) -> int:
    settings = HuxleySettings()
    data = (data_dir or settings.data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    persona_ref = persona or settings.persona
    try:
        rooms = parse_sites(sites, settings.site)
    except ValueError as exc:
        print(f"huxley: --sites: {exc}", file=sys.stderr, flush=True)
        return 2
    # `huxley init` on every start (idempotent): keys, server config, the core creds.
    auth = UpAuth.prepare(data, rooms[0], tuple(rooms))
    try:
        child_auth = {
            (name, site): auth.child_env(name, persona_ref, settings.personas_dir.resolve(), site)
            for site in rooms
            for name in SERVICE_MODULES
            if name in ROOM_SERVICES or site == rooms[0]
        }
    except ValueError as exc:  # a persona that is missing or lists no skills
        print(f"huxley: {exc}", file=sys.stderr, flush=True)
        return 2
    nats: NatsServer | None = None
    existing = nats_url or os.environ.get("HUXLEY_NATS_URL")
    if existing:
        url = existing
        print(f"huxley: using the NATS server at {url}", flush=True)
    else:
        wanted = nats_port or int(os.environ.get("HUXLEY_NATS_PORT", STANDARD_NATS_PORT))
        port = wanted if port_is_free(wanted) else 0
        # JetStream from the config, not flags: a reload (after a revocation) keeps it.
        nats = start_home_server(auth.config, data, port)
        url = nats.url
        if port == 0:
            print(
                f"huxley: port {wanted} is taken; started nats-server on port {nats.port} instead", flush=True
            )
        print(f"huxley: nats-server {nats.binary} (JetStream in {data / 'nats'}) at {url}", flush=True)
    run_file(data).parent.mkdir(parents=True, exist_ok=True)
    run_file(data).write_text(url + "\n")
    sites_file(data).write_text(",".join(rooms) + "\n")

    env = {
        "HUXLEY_NATS_URL": url,
        "HUXLEY_DATA_DIR": str(data),
        "HUXLEY_SITE": rooms[0],
        "HUXLEY_PERSONA": persona_ref,
        "HUXLEY_PERSONAS_DIR": str(settings.personas_dir.resolve()),
        "PYTHONUNBUFFERED": "1",
    }
    # Each child connects as its own identity (its creds, its inbox prefix);
    # each room its own focus, skill-host, bridge and audio-io (up_sites.py).
    from huxley_audio_io.settings import AudioSettings

    web_port = AudioSettings().web_port
    specs = room_specs(SERVICE_MODULES, sys.executable, env, rooms, child_auth, web_port)
    notes = []
    if not os.environ.get("OPENAI_API_KEY"):
        from huxley_cli.natsserver import free_port

        sim_port = free_port()
        sim_env = {**env, "HUXLEY_SIM_PORT": str(sim_port)}
        specs.insert(0, ChildSpec("realtime-sim", [sys.executable, "-m", "huxley_realtime_sim"], sim_env))
        for spec in specs:
            if spec.name.split("@")[0] == "realtime-bridge":
                spec.env = {**spec.env, "HUXLEY_REALTIME_URL": f"ws://127.0.0.1:{sim_port}/v1"}
        notes = [
            "",
            "!! OPENAI_API_KEY is not set: OFFLINE MODE.",
            f"!! The voice is the local scripted Realtime simulator on port {sim_port},",
            "!! not OpenAI. Set OPENAI_API_KEY and restart for the real model.",
            *_offer_demo_book(persona_ref, settings.personas_dir.resolve(), data),
        ]
    from huxley_audio_io.pairing import gateway_lines

    cli = invoked_as(sys.argv[0], Path.cwd(), shutil.which("huxley"))
    _banner(
        [
            "huxley is starting",
            *gateway_lines(data),
            f"bus        : {url} (authenticated: creds in {auth.store.root})",
            f"watch it   : {cli} status   |   {cli} tap   (another terminal; as the read-only observer)",
            f"data       : {data}",
            *([f"rooms      : {room_lines(rooms, web_port)}; one storage"] if len(rooms) > 1 else []),
            *notes,
            "",
            "Ctrl-C stops everything.",
        ]
    )

    # Health is watched on the same bus; the nats-server we started is kept alive.
    bus = auth.observer(settings.model_copy(update={"nats_url": url, "site": rooms[0]}))
    supervisor = Supervisor(specs, bus=bus, watchdog=WatchdogConfig.from_env(), nats=nats, forks=forks)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    supervisor.start()
    try:
        await stop.wait()
        print("huxley: stopping...", flush=True)
    finally:
        await supervisor.stop()
        if nats is not None:
            nats.stop()
        with contextlib.suppress(OSError):
            run_file(data).unlink()
        with contextlib.suppress(OSError):
            pid_file(data).unlink()
    print("huxley: stopped", flush=True)
    return 0


@app.command()
def up(
    persona: Annotated[str | None, typer.Option(help="Persona name or YAML path")] = None,
    nats_url: Annotated[str | None, typer.Option(help="Use this NATS server instead of starting one")] = None,
    nats_port: Annotated[int | None, typer.Option(help="Port for the nats-server we start")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Where state lives (default ./data)")] = None,
    sites: Annotated[
        str | None,
        typer.Option(help="Rooms on this bus, e.g. kitchen,bedroom: each its own services, one storage"),
    ] = None,
) -> None:
    """Start nats-server and every service, supervised, until Ctrl-C."""
    raise typer.Exit(asyncio.run(_up(persona, nats_url, nats_port, data_dir, sites)))


@app.command()
def pair(
    data_dir: Annotated[Path | None, typer.Option(help="Where state lives (default ./data)")] = None,
    new: Annotated[bool, typer.Option("--new", help="A new code; paired devices pair again")] = False,
) -> None:
    """Show the web gateway's pairing code (made on first use), which devices not
    on this machine need: the page asks for it, a device adds ?token=CODE."""
    from huxley_audio_io.pairing import code_path, ensure_code

    data = (data_dir or HuxleySettings().data_dir).resolve()
    typer.echo(ensure_code(data, renew=new))
    typer.echo(f"(kept in {code_path(data)})", err=True)


async def _status(
    nats_url: str | None, as_json: bool, wait_s: float, creds: Path | None = None, sites: str | None = None
) -> int:
    # The rooms: --sites, else those a running `huxley up --sites` wrote down, else HUXLEY_SITE.
    rooms = parse_sites(sites, "") if sites else read_sites(HuxleySettings().data_dir.resolve())
    settings, nc = await tool_bus(nats_url, "huxley-status", OBSERVER, creds, 3, rooms[0] if rooms else None)
    rooms = rooms or [settings.site]
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            found = {site: await discover(nc, site) for site in rooms}
            if not any(missing_services(s) for s in found.values()) or loop.time() >= deadline:
                break
            await asyncio.sleep(0.25)
    finally:
        await nc.close()
    if as_json:
        rows = [s.__dict__ | {"site": site, "healthy": s.healthy} for site, ss in found.items() for s in ss]
        print(json.dumps(rows, indent=2))
    elif len(rooms) == 1:
        print(render(found[rooms[0]]))
    else:
        print("\n\n".join(f"site {site}\n{render(statuses)}" for site, statuses in found.items()))
    return 1 if any(missing_services(s) for s in found.values()) else 0


@app.command()
def status(
    nats_url: Annotated[str | None, typer.Option(help="NATS server URL")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
    wait: Annotated[float, typer.Option(help="Keep looking up to this many seconds for all services")] = 0.0,
    creds: Creds = None,
    sites: Annotated[
        str | None, typer.Option(help="Rooms to show (default: those `huxley up --sites` runs)")
    ] = None,
) -> None:
    """List the live services (NATS micro discovery) and their health, grouped
    by room. Exit 1 if one of the five is missing or unhealthy in a room."""
    raise typer.Exit(asyncio.run(_status(nats_url, as_json, wait, creds, sites)))


async def _ping(
    service: str, instance: str | None, nats_url: str | None, timeout: float, creds: Path | None = None
) -> int:
    try:
        settings, nc = await _bus(nats_url, "huxley-ping", give_up_after_s=timeout, creds=creds)
    except Exception as exc:
        print(f"{service}: bus unreachable: {exc}", file=sys.stderr)
        return 1
    wanted = instance or settings.instance or None
    try:
        replies = await gather_replies(
            nc,
            Subjects(settings.site).health(service),
            encode(HealthRequest()),
            wait_s=timeout,
            max_replies=1 if wanted is None else 1000,
        )
    finally:
        await nc.close()
    for raw in replies:
        try:
            health = decode(raw, Health)
        except WireError:
            continue
        if wanted is None or health.instance == wanted:
            print(f"{health.service} {health.instance} {health.status}")
            return 0 if health.status == "ok" else 1
    print(f"{service}{f' {wanted}' if wanted else ''}: no health reply", file=sys.stderr)
    return 1


@app.command()
def ping(
    service: Annotated[str, typer.Argument(help="storage, focus, realtime-bridge, skill-host or audio-io")],
    instance: Annotated[
        str | None, typer.Option(help="This instance only (default: HUXLEY_INSTANCE)")
    ] = None,
    nats_url: Annotated[str | None, typer.Option(help="NATS server URL")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for an answer")] = 2.0,
    creds: Creds = None,
) -> None:
    """Exit 0 when SERVICE (or one instance of it) answers healthy; container
    health checks use it (with the service's own HUXLEY_NATS_CREDS)."""
    raise typer.Exit(asyncio.run(_ping(service, instance, nats_url, timeout, creds)))


async def _tap(
    subject: str | None, nats_url: str | None, replies: bool, count: int, creds: Path | None = None
) -> int:
    settings, nc = await _bus(nats_url, "huxley-tap", creds=creds)
    subjects = Subjects(settings.site)
    seen = 0
    done = asyncio.Event()

    async def show(msg: object) -> None:
        nonlocal seen
        subject_of = msg.subject  # type: ignore[attr-defined]
        line = format_message(subject_of, msg.data, msg.reply or "", audio=subjects.is_audio(subject_of))  # type: ignore[attr-defined]
        print(
            line if not subject_of.startswith("_INBOX.") else line.replace(subject_of, "reply", 1), flush=True
        )
        seen += 1
        if count and seen >= count:
            done.set()

    await nc.subscribe(subject or subjects.everything, cb=show)
    if replies and not subject:
        await nc.subscribe("_INBOX.>", cb=show)
    await nc.flush()  # the server has our subscriptions before we say we listen
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    where = nc.connected_url.geturl() if nc.connected_url else "?"
    print(f"huxley tap: {subject or subjects.everything} on {where}", file=sys.stderr, flush=True)
    await done.wait()
    await nc.close()
    return 0


@app.command()
def tap(
    subject: Annotated[str | None, typer.Argument(help="Subject to watch (default: huxley.<site>.>)")] = None,
    nats_url: Annotated[str | None, typer.Option(help="NATS server URL")] = None,
    replies: Annotated[
        bool,
        typer.Option(
            help="Also subscribe to `_INBOX.>` for replies. With authentication on (huxley up, compose) "
            "every part reads only its own inbox, so the observer sees no replies and the server "
            "refuses this subscription; it works only on a bus without authentication"
        ),
    ] = False,
    count: Annotated[int, typer.Option(help="Exit after this many messages (0: never)")] = 0,
    creds: Creds = None,
) -> None:
    """Print bus traffic as the read-only observer (mic audio hidden): control
    messages as JSON, audio frames as one summary line each. Requests show;
    their replies travel on the asker's own inbox, which the observer cannot read."""
    raise typer.Exit(asyncio.run(_tap(subject, nats_url, replies, count, creds)))


if __name__ == "__main__":
    app()
