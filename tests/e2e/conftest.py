"""Fixtures of the end-to-end tests: the simulator (in this process), a book,
and the whole stack as processes, fresh per test (its own site, data
directory and speaker file)."""

from __future__ import annotations

import subprocess
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from nats.aio.client import Client

from e2e.e2e_skills import install
from e2e.rig_audio import HARNESS_CREDS_ENV
from e2e.stack import BusLog, Stack, copy_book, write_persona
from huxley_realtime_sim import SimServer
from huxley_realtime_sim.rules import load_rules
from huxley_realtime_sim.voice import ToneVoice
from huxley_wire.permissions import Role
from huxley_wire.subjects import Subjects
from support.auth import SiteAuth

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
RULES = HERE / "rules.yaml"

TOOLS = {"play_audiobook", "set_timer", "open_intercom", "echo_args", "wait_forever"}
SKILLS = {"system", "timers", "audiobooks", "doorbell", "intercom"}
BRIDGE_TOOL_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Book:
    path: Path
    pcm: bytes

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 48_000


@pytest.fixture(scope="session")
def book(tmp_path_factory: pytest.TempPathFactory) -> Book:
    return make_book(tmp_path_factory.mktemp("book"))


def make_book(directory: Path) -> Book:
    """A 12 s chirp (300 Hz rising 80 Hz/s): every 20 ms of it is unique, so a
    block on the speaker tells where in the book it comes from."""
    path = directory / "Chirps.wav"
    subprocess.run(
        [
            "ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi",
            "-i", "aevalsrc=0.4*sin(2*PI*(300*t+40*t*t)):s=24000:d=12",
            "-ac", "1", "-ar", "24000", "-c:a", "pcm_s16le", str(path),
        ],
        check=True,
    )  # fmt: skip
    with wave.open(str(path), "rb") as wav:
        return Book(path, wav.readframes(wav.getnframes()))


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with SimServer(load_rules(RULES), voice=ToneVoice()) as server:
        yield server


def stack_env(base_env: dict[str, str], root: Path, sim: SimServer, auth: SiteAuth) -> dict[str, str]:
    """The environment of every process of one room's stack under `root`."""
    dist = install(root / "site-packages")
    persona = write_persona(root / "persona" / "e2e.yaml")
    return {
        **base_env,
        "HUXLEY_SITE": auth.site,
        "HUXLEY_DATA_DIR": str(root / "data"),
        "HUXLEY_PERSONA": str(persona),
        "PYTHONPATH": f"{dist}:{TESTS}",
        "HUXLEY_LOG_LEVEL": "info",
        # storage
        "HUXLEY_STORAGE_BACKUPS": "0",
        "HUXLEY_STORAGE_SQLITE_SYNCHRONOUS": "NORMAL",
        # skill-host
        "HUXLEY_SCHEMA_WAIT_S": "0.2",
        # audio-io (its press hook connects as the test harness)
        HARNESS_CREDS_ENV: str(auth.creds(Role.HARNESS)),
        "HUXLEY_AUDIO_BACKEND": "file",
        "HUXLEY_AUDIO_FILE_OUT": str(root / "speaker.wav"),
        # bridge
        "HUXLEY_REALTIME_URL": sim.url,
        "HUXLEY_TOOL_TIMEOUT_S": str(BRIDGE_TOOL_TIMEOUT_S),
    }


@pytest.fixture
async def stack(
    nc: Client,
    site: str,
    base_env: dict[str, str],
    tmp_path: Path,
    sim: SimServer,
    book: Book,
    auth: SiteAuth,
) -> AsyncIterator[Stack]:
    env = stack_env(base_env, tmp_path, sim, auth)
    stack = Stack(nc, site, tmp_path, sim, env, await BusLog().start(nc, Subjects(site)))
    copy_book(book.path, stack.data_dir)
    stack.start()
    try:
        await stack.wait_ready(tools=TOOLS, skills=SKILLS)
        yield stack
    finally:
        await stack.stop()
