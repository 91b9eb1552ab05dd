import math

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from huxley_wire.audio import (
    FRAME_BYTES,
    MAX_FRAME_PCM,
    AudioFrame,
    decode_frame,
    encode_frame,
    frames_in,
    frames_of,
    level_dbfs,
    silence,
)
from huxley_wire.errors import ErrorCode, WireError


@given(
    stream=st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True),
    seq=st.integers(min_value=0, max_value=2**40),
    ts=st.integers(min_value=0, max_value=2**62),
    samples=st.integers(min_value=0, max_value=FRAME_BYTES // 2),
    eos=st.booleans(),
)
def test_frames_round_trip(stream, seq, ts, samples, eos):
    frame = AudioFrame(stream=stream, seq=seq, ts_us=ts, pcm=b"\x01\x02" * samples, eos=eos)
    assert decode_frame(encode_frame(frame)) == frame


def test_odd_length_pcm_is_refused():
    with pytest.raises(WireError) as info:
        encode_frame(AudioFrame("s", 0, 0, b"\x00\x01\x02"))
    assert info.value.code == ErrorCode.INVALID


def test_oversize_frame_is_refused_on_decode():
    data = msgpack.packb([1, "s", 0, 0, 0, bytes(FRAME_BYTES * 11)], use_bin_type=True)
    with pytest.raises(WireError) as info:
        decode_frame(data)
    assert info.value.code == ErrorCode.TOO_LARGE


@pytest.mark.parametrize(
    "data",
    [b"\xc1garbage", msgpack.packb([1, "s"]), msgpack.packb({"a": 1}), msgpack.packb([9, "s", 0, 0, 0, b""])],
)
def test_malformed_frames_are_refused(data):
    with pytest.raises(WireError):
        decode_frame(data)


def test_levels():
    assert math.isinf(level_dbfs(silence(20)))
    full_scale_square = (b"\xff\x7f" + b"\x01\x80") * 240  # +32767 / -32767
    assert level_dbfs(full_scale_square) == pytest.approx(0.0, abs=0.01)


def test_frames_of_splits_on_frame_boundaries():
    chunks = frames_of(bytes(FRAME_BYTES * 2 + 100))
    assert [len(c) for c in chunks] == [FRAME_BYTES, FRAME_BYTES, 100]


def test_a_message_moves_seq_by_the_frames_it_holds() -> None:
    assert frames_in(b"") == 1  # a bare end-of-stream still takes a place
    assert frames_in(bytes(FRAME_BYTES)) == 1
    assert frames_in(bytes(FRAME_BYTES + 2)) == 2  # a short last frame counts
    assert frames_in(bytes(MAX_FRAME_PCM)) == 10
