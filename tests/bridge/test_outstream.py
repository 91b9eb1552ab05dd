"""Output framing, real-time pacing with a lead, and item spans for truncation."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from huxley_bridge.outstream import Frame, OutputStream, joined
from huxley_wire.audio import FRAME_BYTES, MAX_FRAME_PCM

from .rig import tone


def test_frames_are_20ms_and_the_last_one_carries_end_of_stream() -> None:
    out = OutputStream(lead_ms=10_000)
    out.write(tone(50), "i1")
    out.end()
    frames = out.release(0.0)
    assert [len(f.pcm) for f in frames] == [FRAME_BYTES, FRAME_BYTES, FRAME_BYTES // 2]
    assert [f.eos for f in frames] == [False, False, True]
    assert [f.seq for f in frames] == [0, 1, 2]
    assert out.eos_released


def test_end_of_an_exact_stream_marks_its_last_frame_and_an_empty_one_sends_a_bare_eos() -> None:
    out = OutputStream(lead_ms=10_000)
    out.write(tone(40))
    out.end()
    assert [(len(f.pcm), f.eos) for f in out.release(0.0)] == [(FRAME_BYTES, False), (FRAME_BYTES, True)]
    empty = OutputStream()
    empty.end()
    assert [(f.pcm, f.eos) for f in empty.release(0.0)] == [(b"", True)]


def test_pacing_keeps_at_most_the_lead_ahead_of_real_time() -> None:
    out = OutputStream(lead_ms=200)
    out.write(tone(2000))
    assert len(out.release(10.0)) == 11  # frames starting within 200 ms
    assert out.release(10.0) == []
    assert out.next_release_at() == 10.0 + 0.22 - 0.2
    assert len(out.release(10.5)) == 25  # caught up to 700 ms
    assert out.expected_end(10.5) == 10.0 + 0.72


def test_a_producer_that_falls_behind_restarts_the_clock() -> None:
    out = OutputStream(lead_ms=100)
    out.write(tone(100))
    assert len(out.release(0.0)) == 5  # all of it
    out.write(tone(400))  # arrives long after the first 100 ms played out
    frames = out.release(5.0)
    assert len(frames) == 6  # a fresh 100 ms lead from now, not a 5 s burst


@given(
    chunks=st.lists(st.integers(1, 3000).map(lambda n: n * 2), min_size=1, max_size=20),
    step=st.floats(0.001, 0.5),
)
def test_every_byte_comes_out_once_in_order(chunks: list[int], step: float) -> None:
    out = OutputStream(lead_ms=200)
    data = bytes(range(256)) * (sum(chunks) // 256 + 1)
    written, now, got = 0, 0.0, b""
    for size in chunks:
        out.write(data[written : written + size])
        written += size
        got += b"".join(f.pcm for f in out.release(now))
        now += step
    out.end()
    while not out.eos_released:
        got += b"".join(f.pcm for f in out.release(now))
        now += 0.05
    assert got == data[:written]


def test_truncations_cut_each_item_at_what_was_played() -> None:
    out = OutputStream()
    out.write(tone(300), "first")
    out.write(tone(100))  # a sound between items
    out.write(tone(500), "second")
    out.write(tone(200), "third")
    assert out.truncations(250) == [("first", 250), ("second", 0), ("third", 0)]
    assert out.truncations(600) == [("second", 200), ("third", 0)]
    assert out.truncations(350) == [("second", 0), ("third", 0)]
    assert out.truncations(1100) == []


def test_frames_released_together_are_joined_into_messages_of_at_most_ten() -> None:
    out = OutputStream(lead_ms=10_000)
    out.write(tone(250), "i1")
    out.end()
    messages = joined(out.release(0.0))
    assert [(m.seq, len(m.pcm), m.eos) for m in messages] == [
        (0, 10 * FRAME_BYTES, False),
        (10, 2 * FRAME_BYTES + FRAME_BYTES // 2, True),
    ]
    assert b"".join(m.pcm for m in messages) == tone(250)
    assert all(len(m.pcm) <= MAX_FRAME_PCM for m in messages)


def test_a_lone_frame_and_a_bare_end_of_stream_stay_as_they_are() -> None:
    lone = [Frame(7, bytes(FRAME_BYTES), False)]
    assert joined(lone) == lone
    end = [Frame(3, bytes(FRAME_BYTES), True), Frame(4, b"", True)]
    assert joined(end) == end  # nothing is joined after an end-of-stream


@given(sizes=st.lists(st.integers(0, FRAME_BYTES // 2).map(lambda n: n * 2), max_size=40))
def test_joining_keeps_every_byte_in_order_and_each_seq_at_its_frame(sizes: list[int]) -> None:
    frames = [Frame(i, bytes([i % 256]) * size, i == len(sizes) - 1) for i, size in enumerate(sizes)]
    messages = joined(frames)
    assert b"".join(m.pcm for m in messages) == b"".join(f.pcm for f in frames)
    assert all(len(m.pcm) <= MAX_FRAME_PCM for m in messages)
    # Each message is frames[seq : next message's seq], joined.
    bounds = [m.seq for m in messages] + [len(frames)]
    for message, start, stop in zip(messages, bounds, bounds[1:], strict=False):
        assert message.pcm == b"".join(f.pcm for f in frames[start:stop])
    assert [m.eos for m in messages] == [False] * (len(messages) - 1) + ([True] if frames else [])
