"""`python -m huxley_realtime_sim`: serve the scripted Realtime model.

Environment: HUXLEY_SIM_PORT (default 8790; 0 picks a free one),
HUXLEY_SIM_HOST (127.0.0.1), HUXLEY_SIM_RULES (a rule file; default: the one
shipped), HUXLEY_SIM_SPEED (overrides the file's pacing), HUXLEY_SIM_VOICE
(tones | espeak), HUXLEY_LOG_JSON, HUXLEY_LOG_LEVEL, HUXLEY_SITE.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from huxley_realtime_sim.rules import RulesError, load_rules
from huxley_realtime_sim.server import SimServer
from huxley_realtime_sim.voice import make_voice
from huxley_runtime.logging import configure_logging, get_logger


class SimSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUXLEY_SIM_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8790, ge=0, le=65535)
    rules: str = ""
    speed: float | None = Field(default=None, ge=0)
    voice: str | None = None


class LogSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUXLEY_", extra="ignore")

    site: str = "home"
    log_json: bool = False
    log_level: str = "info"


async def serve(settings: SimSettings) -> None:
    book = load_rules(settings.rules or None)
    voice = make_voice(settings.voice or book.voice, book.espeak_voice)
    server = SimServer(book, host=settings.host, port=settings.port, voice=voice, speed=settings.speed)
    await server.start()
    print(f"huxley-realtime-sim: listening on {server.url} ({len(book.rules)} rules)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main() -> None:
    logs = LogSettings()
    configure_logging("realtime-sim", logs.site, json=logs.log_json, level=logs.log_level)
    try:
        settings = SimSettings()
        asyncio.run(serve(settings))
    except RulesError as exc:
        get_logger().error("sim_rules_invalid", error=str(exc))
        print(f"huxley-realtime-sim: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
