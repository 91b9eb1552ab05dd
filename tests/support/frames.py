"""What a stream's messages should say about their place in it."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import accumulate

from huxley_wire.audio import AudioFrame, frames_in


def places(messages: Sequence[AudioFrame]) -> list[int]:
    """The seq each message should carry, from 0: the place of its first 20 ms
    frame, the one before it having moved the count by the frames it joined."""
    return list(accumulate((frames_in(m.pcm) for m in messages[:-1]), initial=0))[: len(messages)]
