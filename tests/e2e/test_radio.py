"""The seeds' resume rule with a stream that has no patience: the published
radio skill (huxley-skill-radio 0.1.0, unmodified: NONMIXABLE, patience 0)
plays a local HTTP station through its own ffmpeg; a timer (the published
timers skill, BLOCK_BEHIND_COMMS) interrupts it, is spoken, and "the framework
resumes the stream after" — the radio's frames reach the speaker again.

The whole stack as processes (tests/e2e/stack.py), the simulator as the model
(radio_rules.yaml), and what was heard read back from audio-io's WAV.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from nats.aio.client import Client

from e2e.rig_audio import HARNESS_CREDS_ENV
from e2e.speaker import BOOK, Timeline
from e2e.stack import PERSONA, BusLog, Stack
from e2e.station import Station, open_station
from e2e.test_e2e import dialog_is_free, references, spoken_ms
from huxley_realtime_sim import SimServer
from huxley_realtime_sim.rules import load_rules
from huxley_realtime_sim.voice import ToneVoice
from huxley_wire.permissions import Role
from huxley_wire.subjects import Subjects
from support.auth import SiteAuth

pytestmark = pytest.mark.slow

RULES = Path(__file__).resolve().parent / "radio_rules.yaml"
TESTS = Path(__file__).resolve().parent.parent
ON = "Radio on."
TEA = "Tea is ready."
RADIO = BOOK  # the Timeline's name for blocks found in the broadcast


@pytest.fixture
def station(tmp_path: Path) -> Iterator[Station]:
    live = open_station(tmp_path / "live.wav")
    try:
        yield live
    finally:
        live.stop()


def write_persona(path: Path, url: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"""
version: 1
name: {PERSONA}
voice: alloy
language_code: en
transcription_language: en
timezone: Europe/London
system_prompt: You are Huxley, under test.
skills:
  timers:
    fire_prompt: "Tell the user: {{message}}"
  radio:
    stations:
      - {{id: local, name: Local FM, url: "{url}"}}
    default: local
""".lstrip()
    )
    return path


@pytest.fixture
async def radio_stack(
    nc: Client, site: str, base_env: dict[str, str], tmp_path: Path, station: Station, auth: SiteAuth
) -> AsyncIterator[Stack]:
    async with SimServer(load_rules(RULES), voice=ToneVoice()) as sim:
        env = {
            **base_env,
            "HUXLEY_PERSONA": str(write_persona(tmp_path / "persona" / "radio.yaml", station.url)),
            "PYTHONPATH": str(TESTS),
            "HUXLEY_LOG_LEVEL": "info",
            "HUXLEY_STORAGE_BACKUPS": "0",
            "HUXLEY_STORAGE_SQLITE_SYNCHRONOUS": "NORMAL",
            "HUXLEY_SCHEMA_WAIT_S": "0.2",
            HARNESS_CREDS_ENV: str(auth.creds(Role.HARNESS)),  # the audio rig's press hook
            "HUXLEY_AUDIO_BACKEND": "file",
            "HUXLEY_AUDIO_FILE_OUT": str(tmp_path / "speaker.wav"),
            "HUXLEY_REALTIME_URL": sim.url,
        }
        stack = Stack(nc, site, tmp_path, sim, env, await BusLog().start(nc, Subjects(site)))
        stack.start()
        try:
            await stack.wait_ready(tools={"play_station", "set_timer"}, skills={"timers", "radio"})
            yield stack
        finally:
            await stack.stop()


async def test_a_timer_interrupts_the_radio_is_spoken_and_the_radio_comes_back(
    radio_stack: Stack, station: Station
) -> None:
    stack = radio_stack
    mark = stack.log.mark
    await stack.press("4")
    started = await stack.log.wait(
        "focus.event.activity",
        lambda a: a["channel"] == "content" and a["state"] == "foreground",
        after=mark,
    )
    radio = started["activity_id"]
    assert (started["content_type"], started["interface"]) == ("nonmixable", "radio")
    await stack.played_at_least(radio, 1000, after=mark)
    assert station.listeners == 1

    # The timer is set straight on the bus (a press would stop the radio: PTT
    # stops content whatever its patience) and fires a second later.
    reply = await stack.call_tool("timers", "set_timer", {"seconds": 1, "message": TEA})
    assert '"ok": true' in reply["output"], reply
    fired = stack.log.mark
    await stack.turn_ended(after=fired, kind="injected")
    paused = await stack.log.wait(
        "focus.event.activity",
        lambda a: a["activity_id"] == radio and a["state"] != "foreground",
        after=fired,
    )
    assert (paused["state"], paused["behavior"]) == ("background", "must_pause"), paused
    resumed = await stack.log.wait(
        "focus.event.activity",
        lambda a: a["activity_id"] == radio and a["state"] == "foreground",
        after=fired,
    )
    assert resumed["seq"] > paused["seq"]
    await stack.played_at_least(radio, stack.played_ms(radio) + 1000, after=fired)
    await dialog_is_free(stack)
    # Paused, the skill-host stopped the skill's stream (its ffmpeg went away);
    # resumed, it called the skill's factory again: a live stream tunes in anew.
    assert station.listeners == 2

    heard = Timeline(await stack.speaker(), references(ON, TEA), station.pcm)
    assert heard.order() == [ON, RADIO, TEA, RADIO], heard.describe()
    assert heard.heard_ms(TEA) >= spoken_ms(TEA) - 100, heard.describe()
    after_tea = heard.book_between(heard.last(TEA), len(heard.blocks))
    assert len(after_tea) >= 45, heard.describe()  # a second of the radio again, at full gain
    # What audio-io had buffered when the radio paused plays out first, then the
    # new listener's broadcast from its start.
    assert min(b.book_s for b in after_tea) < 0.5, heard.describe()
