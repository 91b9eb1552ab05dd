"""Audio-io settings (HUXLEY_ prefix, see docs/services/audio-io.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from huxley_audio_io.access import normalize_origins
from huxley_runtime.settings import HuxleySettings


class AudioSettings(HuxleySettings):
    # Which edge carries the microphone and the speaker ("websocket" = "web").
    audio_backend: Literal["web", "local", "file"] = "web"

    # web: the gateway for browsers and reference-protocol clients.
    # Loopback unless told otherwise; beyond it, clients need the pairing code.
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8765, ge=0, le=65535)  # 0: any free port
    web_tls_cert: Path | None = None  # browsers only give the mic to https or localhost
    web_tls_key: Path | None = None
    web_max_audio_bytes: int = Field(default=48_000, ge=960)  # one `audio` message: 1 s of PCM
    # Pages of other origins that may open the WebSocket (comma-separated scheme://host[:port]).
    web_allowed_origins: Annotated[list[str], NoDecode] = []

    # local: PyAudio devices, by name (case-insensitive substring) or index.
    audio_input_device: str | None = None
    audio_output_device: str | None = None
    keyboard_ptt: bool = True  # space bar in the terminal toggles PTT

    # file: WAV in (played into the mic in real time), WAV out (the speaker).
    audio_file_in: Path | None = None
    audio_file_out: Path | None = None
    audio_file_ptt: Literal["hold", "none"] = "hold"  # hold PTT while the input file plays

    # mixer
    prebuffer_ms: int = Field(default=40, ge=0, le=1000)
    max_buffer_ms: int = Field(default=600, ge=100, le=10_000)
    # An edge mute lasts until focus ends the stream, or this long after the
    # release when focus never decides (focus or the bridge is down).
    ptt_mute_grace_s: float = Field(default=3.0, ge=0)
    claim_ptt_guard_ms: int = Field(default=300, ge=0)  # a PTT this soon after a claim starts is ignored

    @field_validator("web_allowed_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        items = value.split(",") if isinstance(value, str) else value
        if isinstance(items, list):
            return sorted(normalize_origins([str(i) for i in items if str(i).strip()]))
        return value

    @field_validator("audio_backend", mode="before")
    @classmethod
    def _alias(cls, value: object) -> object:
        return "web" if isinstance(value, str) and value.strip().lower() in {"websocket", "ws"} else value
