"""Local devices through PyAudio (PortAudio): a microphone and a speaker on
this machine, chosen by name or index (`huxley audio devices` lists them).

Two threads do the blocking device I/O: capture reads 20 ms at a time and
hands it to the event loop; playback writes the blocks the mixer renders
every 20 ms. Capture is paced by the wall clock too, so a virtual device that
never blocks (ALSA's null or file plugins) behaves like a real one. Devices
that refuse 24 kHz are opened at their own rate and resampled (libsoxr, one
streaming resampler per direction, so 48 kHz mic audio above 12 kHz is
filtered out instead of folding back).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from typing import Any

from huxley_audio_io.backends.base import Backend, Edge
from huxley_audio_io.client_protocol import Out
from huxley_audio_io.devices import Device, choose, list_devices
from huxley_audio_io.keyboard import KeyboardPtt
from huxley_audio_io.mixer import Block
from huxley_audio_io.pcm import Resampler, to_float, to_pcm
from huxley_audio_io.settings import AudioSettings
from huxley_runtime.logging import get_logger
from huxley_wire.audio import BYTES_PER_MS, SAMPLE_RATE, now_us

log = get_logger(component="local-backend")

QUEUE_BLOCKS = 6  # blocks waiting for the speaker before the oldest is dropped (clock drift)
RETRY_OPEN_S = 5.0


class _Opened:
    """The PortAudio handle and the two streams."""

    def __init__(self, pa: Any, mic: Any, mic_rate: int, speaker: Any, speaker_rate: int) -> None:
        self.pa, self.mic, self.mic_rate, self.speaker, self.speaker_rate = (
            pa,
            mic,
            mic_rate,
            speaker,
            speaker_rate,
        )

    def close(self) -> None:
        for stream in (self.mic, self.speaker):
            with contextlib.suppress(Exception):
                stream.stop_stream()
                stream.close()
        with contextlib.suppress(Exception):
            self.pa.terminate()


class LocalBackend(Backend):
    name = "local"

    def __init__(self, settings: AudioSettings) -> None:
        self.settings = settings
        self.input: Device | None = None
        self.output: Device | None = None
        self._io: _Opened | None = None
        self._edge: Edge | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._blocks: queue.Queue[bytes | None] = queue.Queue()
        self._running = threading.Event()
        self._threads: list[threading.Thread] = []
        self._retry: asyncio.Task[None] | None = None
        self._retry_pointless = False  # no PyAudio: retrying cannot help
        self._keyboard: KeyboardPtt | None = None
        self.captured_bytes = 0
        self.played_bytes = 0
        self.dropped_blocks = 0

    # -- lifecycle ---------------------------------------------------------------
    async def start(self, edge: Edge) -> None:
        self._edge = edge
        self._loop = asyncio.get_running_loop()
        if not await self._try_open() and not self._retry_pointless:
            self._retry = asyncio.create_task(self._retry_open(), name="local-open")
        if self.settings.keyboard_ptt:
            keyboard = KeyboardPtt(lambda: edge.ptt_down("keyboard"), lambda: edge.ptt_up("keyboard"))
            if keyboard.start(self._loop):
                self._keyboard = keyboard

    async def _try_open(self) -> bool:
        try:
            self._io = await asyncio.to_thread(self._open)
        except ImportError as exc:
            self.problem = f"PyAudio is not installed ({exc}): pip install 'huxley-audio-io[local]'"
            log.error("pyaudio_missing", error=str(exc))
            self._retry_pointless = True
            return False
        except Exception as exc:
            self.problem = f"audio devices unavailable: {exc}; retrying"
            log.error("local_open_failed", error=str(exc))
            return False
        self.problem = None
        self._running.set()
        self._threads = [
            threading.Thread(target=self._capture, name="huxley-mic", daemon=True),
            threading.Thread(target=self._playback, name="huxley-speaker", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        log.info(
            "local_devices_open",
            input=self.input and self.input.name,
            output=self.output and self.output.name,
            mic_rate=self._io.mic_rate,
            speaker_rate=self._io.speaker_rate,
        )
        return True

    async def _retry_open(self) -> None:
        while True:
            await asyncio.sleep(RETRY_OPEN_S)
            if await self._try_open():
                return

    def _open(self) -> _Opened:
        import pyaudio  # imported here: the other backends must not need PortAudio

        pa = pyaudio.PyAudio()
        try:
            devices = list_devices(pa)
            self.input = choose(devices, self.settings.audio_input_device, "input")
            self.output = choose(devices, self.settings.audio_output_device, "output")
            speaker, speaker_rate = _open_stream(pa, pyaudio.paInt16, self.output, output=True)
            try:
                mic, mic_rate = _open_stream(pa, pyaudio.paInt16, self.input, output=False)
            except Exception:
                speaker.close()
                raise
        except Exception:
            pa.terminate()
            raise
        return _Opened(pa, mic, mic_rate, speaker, speaker_rate)

    async def stop(self) -> None:
        if self._keyboard is not None:
            self._keyboard.stop()
        if self._retry is not None:
            self._retry.cancel()
        self._running.clear()
        self._blocks.put(None)
        for thread in self._threads:
            await asyncio.to_thread(thread.join, 2.0)
        if self._io is not None:
            await asyncio.to_thread(self._io.close)
            self._io = None

    # -- the two threads -------------------------------------------------------------
    def _capture(self) -> None:
        io, loop, edge = self._io, self._loop, self._edge
        assert io is not None and loop is not None and edge is not None
        chunk = io.mic_rate // 50  # 20 ms
        resampler = Resampler(io.mic_rate, SAMPLE_RATE)
        due = time.monotonic()
        while self._running.is_set():
            try:
                data = io.mic.read(chunk, exception_on_overflow=False)
            except Exception as exc:
                self.problem = f"microphone failed: {exc}"
                log.error("mic_read_failed", error=str(exc))
                return
            arrived = now_us()
            pcm = data if resampler.passthrough else to_pcm(resampler.process(to_float(data)))
            self.captured_bytes += len(pcm)
            with contextlib.suppress(RuntimeError):  # the loop closed under us at shutdown
                loop.call_soon_threadsafe(edge.mic, pcm, arrived)
            due += chunk / io.mic_rate
            ahead = due - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)  # a device that never blocks must not run ahead of real time
            elif ahead < -0.2:
                due = time.monotonic()

    def _playback(self) -> None:
        io = self._io
        assert io is not None
        resampler = Resampler(SAMPLE_RATE, io.speaker_rate)
        while True:
            block = self._blocks.get()
            if block is None:
                return
            data = block if resampler.passthrough else to_pcm(resampler.process(to_float(block)))
            try:
                io.speaker.write(data)
            except Exception as exc:
                self.problem = f"speaker failed: {exc}"
                log.error("speaker_write_failed", error=str(exc))
                return
            self.played_bytes += len(block)

    # -- the mixer's output ------------------------------------------------------------
    def play(self, block: Block) -> None:
        if self._io is None or not self._running.is_set():
            return
        while self._blocks.qsize() >= QUEUE_BLOCKS:
            with contextlib.suppress(queue.Empty):
                self._blocks.get_nowait()
                self.dropped_blocks += 1
        self._blocks.put_nowait(block.pcm)

    def send(self, message: Out) -> None:
        if message.get("type") == "audio_clear":
            # PTT or audio_clear: what waits for the speaker is dropped, so
            # the silence is heard now, not after the queued blocks.
            with contextlib.suppress(queue.Empty):
                while True:
                    self._blocks.get_nowait()

    def detail(self) -> dict[str, Any]:
        return {
            "input_device": self.input and f"{self.input.index} {self.input.name}",
            "output_device": self.output and f"{self.output.index} {self.output.name}",
            "captured_ms": self.captured_bytes // BYTES_PER_MS,
            "played_ms": self.played_bytes // BYTES_PER_MS,
            "dropped_blocks": self.dropped_blocks,
            "keyboard_ptt": self._keyboard is not None,
        }


def _open_stream(pa: Any, fmt: int, device: Device, *, output: bool) -> tuple[Any, int]:
    """Open at 24 kHz mono, else at the device's own rate (we resample)."""
    errors = []
    for rate in dict.fromkeys((SAMPLE_RATE, device.default_rate)):
        try:
            stream = pa.open(
                format=fmt,
                channels=1,
                rate=rate,
                input=not output,
                output=output,
                input_device_index=None if output else device.index,
                output_device_index=device.index if output else None,
                frames_per_buffer=rate // 50,
            )
            return stream, rate
        except Exception as exc:
            errors.append(f"{rate} Hz: {exc}")
    kind = "speaker" if output else "microphone"
    raise OSError(f"cannot open {kind} {device.name!r}: {'; '.join(errors)}")
