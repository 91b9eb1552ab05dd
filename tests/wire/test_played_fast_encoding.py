"""audio-io sends PlayedEvent and PlayedBatch without building the models; the
bytes must be exactly what the models would encode to (decoders rely on the
one contract), and `decode_played` reads either."""

from __future__ import annotations

import pytest

from huxley_wire.codec import decode, encode
from huxley_wire.errors import WireError
from huxley_wire.messages.audio import (
    PlayedBatch,
    PlayedEvent,
    decode_played,
    encode_played,
    encode_played_batch,
)


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


def test_encode_played_batch_is_the_models_encoding_and_decodes_as_events() -> None:
    played = {"s": 100.0, "a-1": 40, "é": 0.0}
    fast = encode_played_batch(played)
    model = PlayedBatch(played=played)
    assert fast == encode(model)
    assert decode_played(fast) == [
        PlayedEvent(stream_id="s", played_ms=100.0),
        PlayedEvent(stream_id="a-1", played_ms=40.0),
        PlayedEvent(stream_id="é", played_ms=0.0),
    ]
    assert decode_played(fast, ends_only=True) == []


def test_decode_played_takes_a_single_event_and_refuses_what_is_neither() -> None:
    end = encode_played("s", 12.5, drained=True)
    assert (
        decode_played(end)
        == decode_played(end, ends_only=True)
        == [PlayedEvent(stream_id="s", played_ms=12.5, drained=True)]
    )
    wrong = (b'{"v":1}', b'{"v":1,"played":{"s":"much"}}', b"[1]", b'{"v":2,"stream_id":"s","played_ms":1}')
    for bad in wrong:
        with pytest.raises(WireError):
            decode_played(bad)
