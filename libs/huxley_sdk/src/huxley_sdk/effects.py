"""Side effects a tool result can carry, and the handle of an input claim.

Side effects are frozen dataclasses; each class names its kind in the class
attribute `kind`, so a runtime can tell them apart without isinstance chains.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import ClassVar

# A stream with no explicit patience: mixable content waits this long in the
# background, non-mixable content none at all.
DEFAULT_MIXABLE_PATIENCE = timedelta(minutes=5)


class ContentType(Enum):
    MIXABLE = "mixable"  # may keep playing, ducked, under speech
    NONMIXABLE = "nonmixable"  # must pause under anything louder


class ClaimEndReason(Enum):
    NATURAL = "natural"  # the speaker source ran out, or the skill cancelled
    USER_PTT = "user_ptt"  # the user pressed the button
    PREEMPTED = "preempted"  # a PREEMPT inject (or a stronger claim) took over
    ERROR = "error"  # the session was lost or something failed


class ClaimBusyError(Exception):
    """A claim is already live: COMMS holds one claim at a time."""


class SideEffect:
    """Base of every side effect; subclasses set `kind`."""

    __slots__ = ()
    kind: ClassVar[str]


@dataclass(frozen=True, slots=True)
class AudioStream(SideEffect):
    """Long-form audio (a book, a song) played on the CONTENT channel once the
    model has finished speaking.

    `factory` is called each time the stream (re)starts playing and must
    return a fresh iterator of PCM16 24 kHz mono bytes; a stream that was
    paused is resumed by calling it again, so the factory should pick up from
    wherever the previous iterator's `finally` left off.
    """

    kind: ClassVar[str] = "audio_stream"
    factory: Callable[[], AsyncIterator[bytes]]
    on_complete_prompt: str | None = None
    completion_silence_ms: int = 0
    content_type: ContentType = ContentType.NONMIXABLE
    label: str | None = None
    preroll_ms: int = 0
    on_patience_expired: Callable[[], Awaitable[None]] | None = None
    patience: timedelta | None = None

    def effective_patience(self) -> timedelta:
        """`patience`, or the default for the content type when it is None."""
        if self.patience is not None:
            return self.patience
        if self.content_type is ContentType.MIXABLE:
            return DEFAULT_MIXABLE_PATIENCE
        return timedelta(0)


@dataclass(frozen=True, slots=True)
class PlaySound(SideEffect):
    """A short sound (PCM16 24 kHz mono) played right after the model's reply."""

    kind: ClassVar[str] = "play_sound"
    pcm: bytes


@dataclass(frozen=True, slots=True)
class CancelMedia(SideEffect):
    """Stop whatever content is playing."""

    kind: ClassVar[str] = "cancel_media"


@dataclass(frozen=True, slots=True)
class SetVolume(SideEffect):
    """Set the speaker volume, 0-100."""

    kind: ClassVar[str] = "set_volume"
    level: int


@dataclass(frozen=True, slots=True)
class InputClaim(SideEffect):
    """Take the microphone and speaker for the skill (a call, an intercom).

    While the claim holds, every mic frame goes to `on_mic_frame` instead of
    the model, and `speaker_source` (if any) is played. `on_claim_end` is
    called exactly once with the reason the claim ended.
    """

    kind: ClassVar[str] = "input_claim"
    on_mic_frame: Callable[[bytes], Awaitable[None]]
    speaker_source: AsyncIterator[bytes] | None = None
    on_claim_end: Callable[[ClaimEndReason], Awaitable[None]] | None = None
    title: str | None = None


@dataclass(frozen=True, slots=True)
class ClaimHandle:
    """The skill's handle on a live claim."""

    _cancel: Callable[[], None]
    _wait_end: Callable[[], Awaitable[ClaimEndReason]]

    def cancel(self) -> None:
        """End the claim with NATURAL. Safe to call more than once."""
        self._cancel()

    async def wait_end(self) -> ClaimEndReason:
        """Wait for the claim to end and return why (at once if it already has)."""
        return await self._wait_end()
