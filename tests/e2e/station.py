"""A local radio station for the end-to-end tests: an HTTP server that streams
a WAV (no Content-Length, like an Icecast mount) to every listener from its
start, and counts the listeners, so a test sees each time the radio skill's
ffmpeg tuned in."""

from __future__ import annotations

import subprocess
import threading
import wave
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CHUNK = 4800  # 100 ms: ffmpeg reads in real time (-re), TCP paces the rest


def make_chirp(path: Path, seconds: int = 30) -> bytes:
    """A rising chirp (200 Hz + 30 Hz/s): every 20 ms block of it is unique, so
    the speaker's WAV tells where in the broadcast each block comes from."""
    subprocess.run(
        [
            "ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi",
            "-i", f"aevalsrc=0.4*sin(2*PI*(200*t+15*t*t)):s=24000:d={seconds}",
            "-ac", "1", "-ar", "24000", "-c:a", "pcm_s16le", str(path),
        ],
        check=True,
    )  # fmt: skip
    with wave.open(str(path), "rb") as wav:
        return wav.readframes(wav.getnframes())


@dataclass
class Station:
    wav: bytes  # the whole file as served, header included
    pcm: bytes  # its samples, what the speaker should show
    listeners: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/live.wav"

    def start(self) -> Station:
        station = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/live.wav":
                    self.send_error(404)
                    return
                with station._lock:
                    station.listeners += 1
                self.send_response(200)
                self.send_header("Content-Type", "audio/wav")
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    for at in range(0, len(station.wav), CHUNK):
                        self.wfile.write(station.wav[at : at + CHUNK])
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the listener tuned out (ffmpeg terminated)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="station", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def open_station(path: Path) -> Station:
    pcm = make_chirp(path)
    return Station(wav=path.read_bytes(), pcm=pcm).start()
