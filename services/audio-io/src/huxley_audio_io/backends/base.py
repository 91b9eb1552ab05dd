"""The backend interface.

A backend moves audio between the service and the outside world: it hands
microphone audio and button presses to the `Edge` (the service), and plays
the mixer's blocks. Everything runs on the service's event loop; backends
that need threads (PyAudio) hop back onto it before calling the edge.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Protocol

from huxley_audio_io.client_protocol import ClientMessage, Out
from huxley_audio_io.mixer import Block


class Edge(Protocol):
    """What the service offers a backend."""

    def mic(self, pcm: bytes, arrived_us: int) -> None:
        """Microphone PCM16 24 kHz mono, any length; `arrived_us` = capture
        time of its last sample (µs since the epoch)."""

    def ptt_down(self, source: str) -> None: ...

    def ptt_up(self, source: str) -> None: ...

    # Remote clients only (the web gateway):
    def client_connected(self, client_id: str, language: str | None, persona: str | None) -> list[Out]:
        """A client connected; returns its handshake messages."""
        ...

    def client_gone(self, client_id: str, reason: str) -> None: ...

    async def client_message(self, message: ClientMessage) -> None:
        """Anything else the client said (events, sessions, session controls)."""


class Backend(ABC):
    name: ClassVar[str]
    # False when a remote client applies set_volume itself (the web gateway).
    applies_volume: ClassVar[bool] = True

    problem: str | None = None  # why the backend is not fully working (health: degraded)

    @abstractmethod
    async def start(self, edge: Edge) -> None:
        """Open devices / listen. Must not raise for a missing device: set
        `problem` and keep retrying instead."""

    @abstractmethod
    async def stop(self) -> None: ...

    @abstractmethod
    def play(self, block: Block) -> None:
        """The next 20 ms of the speaker stream (called every 20 ms, audible or not)."""

    def send(self, message: Out) -> None:  # noqa: B027 - most backends have no remote client
        """A client protocol message for the remote client, if there is one."""

    @property
    def client_connected(self) -> bool:
        return False

    def detail(self) -> dict[str, Any]:
        return {}
