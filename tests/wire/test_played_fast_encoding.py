"""audio-io sends PlayedEvent without building the model; the bytes must be
exactly what the model would encode to (decoders rely on the one contract)."""

from __future__ import annotations

import pytest

from huxley_wire.codec import decode, encode
from huxley_wire.messages.audio import PlayedEvent, encode_played


@pytest.mark.parametrize(
    ("stream_id", "played_ms", "drained", "cleared"),
    [("s", 12.5, False, True), ("p-1a2b", 0.0, True, False), ("é-ü", 40, False, False)],
)
def test_encode_played_is_the_models_encoding(
    stream_id: str, played_ms: float, drained: bool, cleared: bool
) -> None:
    fast = encode_played(stream_id, played_ms, drained=drained, cleared=cleared)
    model = PlayedEvent(stream_id=stream_id, played_ms=played_ms, drained=drained, cleared=cleared)
    assert fast == encode(model)
    assert decode(fast, PlayedEvent) == model
