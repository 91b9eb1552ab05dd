"""DTMF markers survive any framing, an offset, gain and noise, and nothing
else is mistaken for one."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from huxley_realtime_sim.markers import KEYS, detect_markers, marker_pcm, valid_marker
from huxley_realtime_sim.voice import ToneVoice, silence
from huxley_wire.audio import FRAME_BYTES, frames_of

ALL_KEYS = "".join(KEYS)
markers = st.text(alphabet=ALL_KEYS, min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(marker=markers, offset_ms=st.integers(0, 500), frame_bytes=st.sampled_from([FRAME_BYTES, 482, 4800]))
def test_marker_round_trips_through_any_framing(marker: str, offset_ms: int, frame_bytes: int) -> None:
    pcm = silence(offset_ms) + marker_pcm(marker) + silence(100)
    # What the bridge sends: the same bytes cut into frames, joined again by the buffer.
    reassembled = b"".join(frames_of(pcm, frame_bytes))
    assert detect_markers(reassembled) == marker


@settings(max_examples=30, deadline=None)
@given(marker=markers, gain=st.floats(0.2, 1.0), noise=st.floats(0, 800), seed=st.integers(0, 2**16))
def test_marker_survives_gain_and_noise(marker: str, gain: float, noise: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    samples = np.frombuffer(marker_pcm(marker), dtype="<i2").astype(np.float64) * gain
    samples += rng.normal(0, noise, len(samples))
    pcm = np.clip(samples, -32768, 32767).astype("<i2").tobytes()
    assert detect_markers(pcm) == marker


def test_speech_like_audio_and_silence_are_not_markers() -> None:
    voice = ToneVoice()
    assert detect_markers(voice.render_now("what time is it in the kitchen please")) == ""
    assert detect_markers(silence(2000)) == ""
    rng = np.random.default_rng(7)
    noise = rng.normal(0, 4000, 48_000).astype("<i2").tobytes()
    assert detect_markers(noise) == ""
    assert detect_markers(b"") == "" and detect_markers(b"\x01") == ""


def test_marker_inside_other_audio_is_found() -> None:
    voice = ToneVoice()
    pcm = voice.render_now("hello there") + marker_pcm("7#") + voice.render_now("thanks")
    assert detect_markers(pcm) == "7#"


def test_invalid_markers_are_refused() -> None:
    assert not valid_marker("") and not valid_marker("1E") and valid_marker("*0#D")
    with pytest.raises(ValueError, match="DTMF"):
        marker_pcm("12x")
