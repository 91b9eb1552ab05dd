"""The file backend, for headless runs and tests: a WAV file is the microphone
(fed in real time, with PTT held while it plays), a WAV file is the speaker
(every 20 ms block the mixer renders, silence included, so the file is a
true timeline of what was heard)."""

from __future__ import annotations

import asyncio
import contextlib
import wave
from typing import Any

from huxley_audio_io.backends.base import Backend, Edge
from huxley_audio_io.mixer import Block
from huxley_audio_io.pcm import open_wav_writer, read_wav
from huxley_audio_io.settings import AudioSettings
from huxley_runtime.logging import get_logger
from huxley_wire.audio import BYTES_PER_MS, FRAME_BYTES, FRAME_MS, now_us

log = get_logger(component="file-backend")


class FileBackend(Backend):
    name = "file"

    def __init__(self, settings: AudioSettings) -> None:
        self.settings = settings
        self.input_done = asyncio.Event()
        self._writer: wave.Wave_write | None = None
        self._feeder: asyncio.Task[None] | None = None
        self.fed_bytes = 0
        self.written_bytes = 0

    async def start(self, edge: Edge) -> None:
        out_path, in_path = self.settings.audio_file_out, self.settings.audio_file_in
        if out_path is not None:
            try:
                self._writer = open_wav_writer(out_path)
            except OSError as exc:
                self.problem = f"cannot write {out_path}: {exc}"
                log.error("file_out_failed", path=str(out_path), error=str(exc))
        if in_path is None:
            self.input_done.set()
            return
        try:
            pcm = await asyncio.to_thread(read_wav, in_path)
        except (OSError, ValueError, EOFError, wave.Error) as exc:
            self.problem = f"cannot read {in_path}: {exc}"
            log.error("file_in_failed", path=str(in_path), error=str(exc))
            self.input_done.set()
            return
        self._feeder = asyncio.create_task(self._feed(edge, pcm), name="file-mic")

    async def _feed(self, edge: Edge, pcm: bytes) -> None:
        """Play the input file into the mic in real time."""
        hold = self.settings.audio_file_ptt == "hold"
        loop = asyncio.get_running_loop()
        try:
            if hold:
                edge.ptt_down("file")
            due = loop.time()
            for offset in range(0, len(pcm), FRAME_BYTES):
                due += FRAME_MS / 1000
                await asyncio.sleep(max(0.0, due - loop.time()))
                chunk = pcm[offset : offset + FRAME_BYTES]
                edge.mic(chunk, now_us())
                self.fed_bytes += len(chunk)
        finally:
            if hold:
                edge.ptt_up("file")
            self.input_done.set()
            log.info("file_in_done", ms=self.fed_bytes // BYTES_PER_MS)

    async def stop(self) -> None:
        if self._feeder is not None and not self._feeder.done():
            self._feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._feeder
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def play(self, block: Block) -> None:
        if self._writer is not None:
            self._writer.writeframes(block.pcm)
            self.written_bytes += len(block.pcm)

    def detail(self) -> dict[str, Any]:
        return {
            "file_in": str(self.settings.audio_file_in) if self.settings.audio_file_in else None,
            "file_out": str(self.settings.audio_file_out) if self.settings.audio_file_out else None,
            "fed_ms": self.fed_bytes // BYTES_PER_MS,
            "written_ms": self.written_bytes // BYTES_PER_MS,
        }
