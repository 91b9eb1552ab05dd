"""The `audio.played` messages of a batch of mixer reports (pure).

Progress (how far each playing stream got, every ~100 ms) goes out as one
PlayedBatch per report tick; a stream's end (drained, or cleared) as its own
PlayedEvent, after the batch, so a consumer sees a stream's last progress
before its end.
"""

from __future__ import annotations

from huxley_audio_io.mixer import Played
from huxley_wire.messages import audio as m


def played_messages(played: list[Played]) -> list[bytes]:
    progress: dict[str, float] = {}
    ends: list[bytes] = []
    for p in played:
        if p.drained or p.cleared:
            progress.pop(p.stream_id, None)  # its end carries the same count
            ends.append(m.encode_played(p.stream_id, p.played_ms, drained=p.drained, cleared=p.cleared))
        else:
            progress[p.stream_id] = p.played_ms
    items = list(progress.items())
    batches = [
        m.encode_played_batch(dict(items[i : i + m.PLAYED_BATCH_MAX]))
        for i in range(0, len(items), m.PLAYED_BATCH_MAX)
    ]
    return batches + ends
