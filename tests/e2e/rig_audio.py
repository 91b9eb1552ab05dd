"""Audio-io for the end-to-end tests: `python -m e2e.rig_audio`.

The real service with the real file backend (the speaker is a WAV file, every
20 ms block written, silence included). The file backend plays one input file
at start; a scenario needs several presses at moments it chooses, so this
backend also takes presses on demand: a request on `huxley.<site>.test.press` carries
PCM16 24 kHz mono, which is fed to the microphone in real time with PTT held
while it plays, exactly as the file backend feeds its input file. The reply
(after the release) says how many ms were fed.

The service connects as audio-io; the press hook, a test's, has a connection
of its own as the test harness (HUXLEY_TEST_HARNESS_CREDS), so audio-io's
identity needs no test subject. On a satellite (tests/cluster) there are no
harness creds: the hook listens on the leaf server, where the test presses.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import nats
from nats.aio.msg import Msg

from huxley_audio_io.backends.base import Edge
from huxley_audio_io.backends.file import FileBackend
from huxley_audio_io.service import AudioService
from huxley_audio_io.settings import AudioSettings
from huxley_runtime.bus import inbox_prefix_of_creds, settle
from huxley_runtime.logging import configure_logging
from huxley_wire.audio import BYTES_PER_MS
from huxley_wire.subjects import Subjects

HARNESS_CREDS_ENV = "HUXLEY_TEST_HARNESS_CREDS"


def press_subject(site: str) -> str:
    return f"{Subjects(site).prefix}.test.press"


class PressingFileBackend(FileBackend):
    """The file backend, plus presses on demand (one at a time, like a hand)."""

    def __init__(self, settings: AudioSettings) -> None:
        super().__init__(settings)
        self.edge: Edge | None = None
        self._one_hand = asyncio.Lock()

    async def start(self, edge: Edge) -> None:
        self.edge = edge
        await super().start(edge)

    async def press(self, pcm: bytes) -> int:
        assert self.edge is not None, "press before start"
        async with self._one_hand:
            before = self.fed_bytes
            await self._feed(self.edge, pcm)  # the file backend's own real-time feed, PTT held
            return (self.fed_bytes - before) // BYTES_PER_MS


class RigAudioService(AudioService):
    def __init__(self, settings: AudioSettings) -> None:
        self.pressing = PressingFileBackend(settings)
        super().__init__(settings, backend=self.pressing)

    async def on_start(self) -> None:
        await super().on_start()
        creds = os.environ.get(HARNESS_CREDS_ENV)
        urls = [u.strip() for u in self.settings.nats_url.split(",") if u.strip()]  # a cluster's seeds
        if creds:
            prefix = inbox_prefix_of_creds(Path(creds), self.settings.site)
            self.rig_nc = await nats.connect(urls, user_credentials=creds, inbox_prefix=prefix)
        else:  # a satellite's: its local leaf server asks for no creds, and presses stay on it
            self.rig_nc = await nats.connect(urls)
        await self.rig_nc.subscribe(press_subject(self.settings.site), cb=self._on_press)
        await settle(self.rig_nc)

    async def on_stop(self) -> None:
        await self.rig_nc.close()
        await super().on_stop()

    async def _on_press(self, msg: Msg) -> None:
        # A task: the subscription's callbacks run one at a time, and a press lasts.
        self.spawn(self._answer_press(msg), name="press")

    async def _answer_press(self, msg: Msg) -> None:
        fed_ms = await self.pressing.press(msg.data)
        await msg.respond(json.dumps({"fed_ms": fed_ms}).encode())


def main() -> None:
    settings = AudioSettings(audio_backend="file")
    configure_logging("audio-io", settings.site, json=settings.log_json, level=settings.log_level)
    asyncio.run(RigAudioService(settings).run())


if __name__ == "__main__":
    main()
