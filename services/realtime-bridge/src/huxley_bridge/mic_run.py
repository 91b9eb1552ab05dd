"""Mic frames that wait together go to the model together.

Mic audio comes in 20 ms frames; an edge (or a loaded machine) can deliver
several at once. Each `input_audio_buffer.append` costs a base64, a JSON
encode and a masked WebSocket frame, so five frames appended one by one
make the last of them wait for four sends. The coordinator still sees every
frame on its own (its counts and press rules are unchanged); only the
appends it decides on for frames queued back to back are joined, in order,
into one append of the same bytes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from huxley_bridge import commands as c
from huxley_bridge import events as e

MAX_RUN = 25  # frames (500 ms) in one append at most


@dataclass(frozen=True, slots=True)
class MicRun:
    """Mic frames that were queued back to back, handled as one loop item."""

    frames: tuple[e.MicAudio, ...]


def take_run(first: e.MicAudio, queue: asyncio.Queue[Any]) -> tuple[MicRun | e.MicAudio, Any]:
    """`first` and the mic frames queued right behind it; the first other item
    taken off the queue comes back too, to be handled next."""
    frames = [first]
    while len(frames) < MAX_RUN:
        try:
            item = queue.get_nowait()
        except asyncio.QueueEmpty:
            break
        if not isinstance(item, e.MicAudio):
            return MicRun(tuple(frames)), item
        frames.append(item)
    return (MicRun(tuple(frames)) if len(frames) > 1 else first), None


def joined_appends(commands: list[c.Command]) -> list[c.Command]:
    """The commands in order, consecutive AppendAudio joined into one."""
    out: list[c.Command] = []
    for cmd in commands:
        last = out[-1] if out else None
        if isinstance(cmd, c.AppendAudio) and isinstance(last, c.AppendAudio):
            out[-1] = c.AppendAudio(last.pcm + cmd.pcm)
        else:
            out.append(cmd)
    return out
