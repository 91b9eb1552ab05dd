"""Where the microphone and the speaker are: one interface, three backends."""

from __future__ import annotations

from typing import TYPE_CHECKING

from huxley_audio_io.backends.base import Backend, Edge

if TYPE_CHECKING:
    from huxley_audio_io.settings import AudioSettings

__all__ = ["Backend", "Edge", "make_backend"]


def make_backend(settings: AudioSettings) -> Backend:
    if settings.audio_backend == "local":
        from huxley_audio_io.backends.local import LocalBackend

        return LocalBackend(settings)
    if settings.audio_backend == "file":
        from huxley_audio_io.backends.file import FileBackend

        return FileBackend(settings)
    from huxley_audio_io.backends.web import WebBackend

    return WebBackend(settings)
