"""audio.played messages of the mixer's reports (huxley_audio_io.reports, pure):
progress in one batch, each stream's end in its own event after it."""

from __future__ import annotations

from huxley_audio_io.mixer import Played
from huxley_audio_io.reports import played_messages
from huxley_wire.messages import audio as m


def test_progress_goes_in_one_batch_and_each_end_in_its_own_event_after_it() -> None:
    out = played_messages(
        [
            Played("done", 300.0, drained=True),
            Played("a", 100.0),
            Played("b", 220.0),
            Played("gone", 80.0, drained=True, cleared=True),
        ]
    )
    assert out == [
        m.encode_played_batch({"a": 100.0, "b": 220.0}),
        m.encode_played("done", 300.0, drained=True),
        m.encode_played("gone", 80.0, drained=True, cleared=True),
    ]


def test_a_stream_that_ends_is_not_also_in_the_batch_and_nothing_makes_nothing() -> None:
    assert played_messages([Played("a", 100.0), Played("a", 120.0, drained=True)]) == [
        m.encode_played("a", 120.0, drained=True)
    ]
    assert played_messages([]) == []


def test_many_streams_are_split_over_batches_of_bounded_size() -> None:
    reports = [Played(f"s{i}", float(i)) for i in range(m.PLAYED_BATCH_MAX + 5)]
    out = played_messages(reports)
    assert len(out) == 2
    decoded = [p for data in out for p in m.decode_played(data)]
    assert [(p.stream_id, p.played_ms) for p in decoded] == [(r.stream_id, r.played_ms) for r in reports]
