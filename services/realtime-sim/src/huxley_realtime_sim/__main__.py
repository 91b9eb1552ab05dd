"""`huxley-realtime-sim` / `python -m huxley_realtime_sim`: serve the scripted
Realtime model until SIGTERM or SIGINT.

Settings come from the environment (`settings.py`: HUXLEY_SIM_PORT,
HUXLEY_SIM_HOST, HUXLEY_SIM_RULES, HUXLEY_SIM_SPEED, HUXLEY_SIM_VOICE,
HUXLEY_SIM_CONTROLS, and
the shared HUXLEY_SITE, HUXLEY_LOG_JSON, HUXLEY_LOG_LEVEL); an option given
on the command line wins over its variable.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from huxley_realtime_sim.rules import RulesError, load_rules
from huxley_realtime_sim.server import SimServer
from huxley_realtime_sim.settings import SimSettings
from huxley_realtime_sim.voice import make_voice
from huxley_runtime.logging import configure_logging, get_logger
from huxley_runtime.signals import stop_on_signals

EXIT_BAD_CONFIG = 2

app = typer.Typer(add_completion=False)


async def serve(settings: SimSettings) -> None:
    book = load_rules(settings.sim_rules)
    voice = make_voice(settings.sim_voice or book.voice, book.espeak_voice)
    server = SimServer(
        book,
        host=settings.sim_host,
        port=settings.sim_port,
        voice=voice,
        speed=settings.sim_speed,
        http_controls=settings.sim_controls,
    )
    stop = asyncio.Event()
    stop_on_signals(stop.set)
    await server.start()
    print(f"huxley-realtime-sim: listening on {server.url} ({len(book.rules)} rules)", flush=True)
    get_logger().info("sim_listening", url=server.url, rules=len(book.rules))
    try:
        await stop.wait()
    finally:
        await server.stop()
        get_logger().info("sim_stopped")


def _refuse(message: str) -> None:
    print(f"huxley-realtime-sim: {message}", file=sys.stderr, flush=True)
    raise typer.Exit(EXIT_BAD_CONFIG)


@app.command()
def run(
    host: Annotated[str | None, typer.Option(help="Listening address [HUXLEY_SIM_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port, 0 for a free one [HUXLEY_SIM_PORT].")] = None,
    rules: Annotated[Path | None, typer.Option(help="The rule file [HUXLEY_SIM_RULES].")] = None,
    speed: Annotated[float | None, typer.Option(help="Pacing, 1.0 real time [HUXLEY_SIM_SPEED].")] = None,
    voice: Annotated[str | None, typer.Option(help="tones or espeak [HUXLEY_SIM_VOICE].")] = None,
) -> None:
    """Serve the scripted OpenAI Realtime model on ws://HOST:PORT/v1."""
    options = {"host": host, "port": port, "rules": rules, "speed": speed, "voice": voice}
    given: dict[str, Any] = {f"sim_{name}": value for name, value in options.items() if value is not None}
    try:
        settings = SimSettings(**given)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        _refuse(f"bad settings: {problems}")
        return
    configure_logging("realtime-sim", settings.site, json=settings.log_json, level=settings.log_level)
    try:
        asyncio.run(serve(settings))
    except RulesError as exc:
        get_logger().error("sim_rules_invalid", error=str(exc))
        _refuse(str(exc))
    except KeyboardInterrupt:
        pass


def main() -> None:
    app()


if __name__ == "__main__":
    main()
