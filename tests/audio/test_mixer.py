"""The mixer core with synthetic tones: levels, gating by focus, ramps,
played counts, the jitter buffer and the edge mute."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audio.signals import (
    DIALOG,
    DUCKED,
    FOREGROUND,
    PAUSED,
    STOPPED,
    amplitude_at,
    counter,
    feed,
    frames,
    render,
    tone,
)
from huxley_audio_io.mixer import Mixer, Played, PushResult, volume_gain
from huxley_audio_io.pcm import to_float, to_pcm

LSB = 1 / 32768


def quantized(x: np.ndarray) -> np.ndarray:
    return to_float(to_pcm(x))


def test_mixable_stream_ducks_under_dialog_and_returns_to_full():
    mixer = Mixer(prebuffer_ms=0, max_buffer_ms=10_000)
    music = quantized(tone(440, 3000, amplitude=0.5))
    mixer.apply_grant("music", FOREGROUND)
    feed(mixer, frames("music", music))

    alone = render(mixer, 200)
    np.testing.assert_allclose(alone, music[:4800], atol=LSB)
    assert amplitude_at(alone, 440) == pytest.approx(0.5, rel=0.01)

    # A turn takes DIALOG: focus sends the music BACKGROUND + MAY_DUCK (0.3, 100 ms ramp).
    voice = quantized(tone(1000, 1000, amplitude=0.2))
    mixer.apply_grant("music", DUCKED)
    mixer.apply_grant("turn", DIALOG)
    feed(mixer, frames("turn", voice))
    during = render(mixer, 600)
    ramp = 1.0 - 0.7 * np.arange(1, 2401) / 2400  # sample-accurate linear ramp over 100 ms
    gain = np.concatenate([ramp, np.full(14400 - 2400, 0.3)])
    expected = music[4800 : 4800 + 14400] * gain + voice[:14400]
    np.testing.assert_allclose(during, expected, atol=2 * LSB)
    ducked = during[2400:]
    assert amplitude_at(ducked, 440) == pytest.approx(0.15, rel=0.01)  # the music, at 0.3
    assert amplitude_at(ducked, 1000) == pytest.approx(0.2, rel=0.01)  # the voice, untouched

    # The turn ends: the music ramps back to full and keeps playing.
    mixer.apply_grant("turn", STOPPED)
    mixer.apply_grant("music", FOREGROUND)
    back = render(mixer, 400)
    ramp_up = 0.3 + 0.7 * np.arange(1, 2401) / 2400
    gain = np.concatenate([ramp_up, np.ones(9600 - 2400)])
    np.testing.assert_allclose(back, music[19200 : 19200 + 9600] * gain, atol=2 * LSB)
    assert amplitude_at(back[2400:], 440) == pytest.approx(0.5, rel=0.01)
    assert amplitude_at(back[2400:], 1000) < 0.001


def test_nonmixable_stream_is_silent_while_paused_and_continues_after():
    mixer = Mixer(prebuffer_ms=0, max_buffer_ms=10_000)
    book = counter(48_000)
    mixer.apply_grant("book", FOREGROUND)
    feed(mixer, frames("book", book))
    np.testing.assert_array_equal(render(mixer, 100), book[:2400])

    # A reminder takes DIALOG: the book is BACKGROUND + MUST_PAUSE.
    mixer.apply_grant("book", PAUSED)
    voice = quantized(tone(700, 300, amplitude=0.3))
    mixer.apply_grant("turn", DIALOG)
    feed(mixer, frames("turn", voice))
    paused = render(mixer, 300)
    np.testing.assert_allclose(paused, voice, atol=LSB)  # only the voice: not one sample of the book
    assert mixer.streams()[0].state == "paused"

    # Back to FOREGROUND: the book goes on from the very next sample.
    mixer.apply_grant("turn", STOPPED)
    mixer.apply_grant("book", FOREGROUND)
    np.testing.assert_array_equal(render(mixer, 200), book[2400 : 2400 + 4800])


def test_frames_of_a_stream_that_lost_its_grant_are_never_mixed():
    mixer = Mixer(prebuffer_ms=0, max_buffer_ms=10_000)
    mixer.apply_grant("s1", FOREGROUND)
    feed(mixer, frames("s1", tone(440, 1000)))
    assert amplitude_at(render(mixer, 100), 440) == pytest.approx(0.5, rel=0.02)

    final = mixer.apply_grant("s1", STOPPED)
    assert final == [Played("s1", 100.0, drained=True, cleared=True)]
    assert not render(mixer, 200).any()

    late = frames("s1", tone(440, 200), first_seq=50)
    assert {mixer.push(f) for f in late} == {PushResult.ENDED}
    assert not render(mixer, 200).any()
    assert mixer.stream_ids() == []


def test_a_stream_without_a_grant_waits_unheard_until_granted():
    mixer = Mixer(prebuffer_ms=0, max_buffer_ms=10_000)
    signal = counter(4800)
    feed(mixer, frames("early", signal))  # frames can beat focus's event to audio-io
    assert not render(mixer, 100).any()
    assert mixer.streams()[0].state == "waiting_grant"
    mixer.apply_grant("early", FOREGROUND)
    np.testing.assert_array_equal(render(mixer, 200), signal)  # nothing was lost while waiting


def test_only_the_grants_holder_produces_its_stream():
    """`audio.out.<owner>.<id>`: a skill may publish under its own name only,
    and audio-io plays under an activity only frames of its holder."""
    mixer = Mixer(prebuffer_ms=0, max_buffer_ms=10_000)
    mixer.apply_grant("dialog", replace(DIALOG, holder="bridge"))
    noise = frames("dialog", tone(1000, 200))
    assert {mixer.push(f, owner="skill-timers") for f in noise} == {PushResult.FOREIGN}
    assert not render(mixer, 100).any()
    voice = counter(2400)
    assert {mixer.push(f, owner="bridge") for f in frames("dialog", voice)} == {PushResult.QUEUED}
    np.testing.assert_array_equal(render(mixer, 100), voice)


def test_before_the_grant_the_first_producer_owns_the_stream_until_focus_names_the_holder():
    mixer = Mixer(prebuffer_ms=0, max_buffer_ms=10_000)
    first = counter(2400)
    feed_as = [mixer.push(f, owner="skill-books") for f in frames("s", first)]
    assert set(feed_as) == {PushResult.QUEUED}
    assert {mixer.push(f, owner="skill-timers") for f in frames("s", tone(1000, 100))} == {PushResult.FOREIGN}
    mixer.apply_grant("s", replace(FOREGROUND, holder="skill-books"))
    np.testing.assert_array_equal(render(mixer, 100), first)  # the holder's early audio plays

    # Audio queued by an impostor before focus said whose the stream is never plays.
    mixer.push(frames("t", tone(1000, 100))[0], owner="skill-timers")
    mixer.apply_grant("t", replace(FOREGROUND, holder="skill-books"))
    assert not render(mixer, 100).any()
    assert mixer.push(frames("t", counter(480))[0], owner="skill-books") is PushResult.QUEUED


def test_a_stream_never_granted_is_given_up():
    mixer = Mixer(prebuffer_ms=0, ungranted_ttl_ms=100)
    feed(mixer, frames("ghost", tone(440, 40)))
    expired = [sid for _ in range(10) for sid in mixer.render().expired]
    assert expired == ["ghost"]
    assert mixer.stream_ids() == []


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]),
            st.sampled_from(["fg", "duck", "pause", "stop", "push", "render"]),
        ),
        max_size=60,
    )
)
def test_output_is_silent_whenever_no_stream_holds_an_audible_grant(steps):
    mixer = Mixer(prebuffer_ms=0)
    audible: set[str] = set()
    for stream, action in steps:
        if action == "push":
            feed(mixer, frames(stream, tone(300 + 100 * ord(stream), 60)))
        elif action == "render":
            block = to_float(mixer.render().pcm)
            if not audible:
                assert not block.any()
        else:
            grant = {"fg": FOREGROUND, "duck": DUCKED, "pause": PAUSED, "stop": STOPPED}[action]
            mixer.apply_grant(stream, grant)
            (audible.add if grant.audible else audible.discard)(stream)


def test_played_is_reported_every_100_ms_and_drained_after_the_last_sample():
    mixer = Mixer(prebuffer_ms=40)
    mixer.apply_grant("turn", DIALOG)
    feed(mixer, frames("turn", tone(440, 300), eos=True))
    reports = []
    for tick in range(1, 21):
        reports += [(tick, p) for p in mixer.render().played]
    assert reports == [
        (5, Played("turn", 100.0)),
        (10, Played("turn", 200.0)),
        (15, Played("turn", 300.0, drained=True)),
    ]


def test_drained_waits_while_the_stream_is_paused():
    mixer = Mixer(prebuffer_ms=0)
    mixer.apply_grant("s", FOREGROUND)
    feed(mixer, frames("s", tone(440, 40), eos=True))
    mixer.apply_grant("s", PAUSED)
    assert not [p for _ in range(10) for p in mixer.render().played]
    mixer.apply_grant("s", FOREGROUND)
    played = [p for _ in range(5) for p in mixer.render().played]
    assert played == [Played("s", 40.0, drained=True)]


def test_jitter_buffer_waits_for_the_prebuffer_and_again_after_an_underrun():
    mixer = Mixer(prebuffer_ms=40)
    mixer.apply_grant("s", FOREGROUND)
    signal = counter(480 * 4)  # four 20 ms frames
    feed(mixer, frames("s", signal[:480]))  # 20 ms: not enough to start
    assert not render(mixer, 20).any()
    feed(mixer, frames("s", signal[480:960]))  # 40 ms: go
    np.testing.assert_array_equal(render(mixer, 40), signal[:960])
    assert not render(mixer, 20).any()  # ran dry: waits for 40 ms again
    feed(mixer, frames("s", signal[960:1440]))
    assert not render(mixer, 20).any()
    feed(mixer, frames("s", signal[1440:]))
    np.testing.assert_array_equal(render(mixer, 40), signal[960:])


def test_buffer_latency_is_bounded_by_dropping_the_oldest_audio():
    mixer = Mixer(prebuffer_ms=0, max_buffer_ms=200)
    mixer.apply_grant("s", FOREGROUND)
    results = [mixer.push(f) for f in frames("s", counter(24_000))]  # 1 s at once
    assert PushResult.OVERFLOW in results
    assert mixer.streams()[0].buffered_ms == 200.0
    np.testing.assert_array_equal(render(mixer, 200), counter(4800, start=24_000 - 4800))


def test_edge_mute_holds_every_stream_present_and_new_ones_play():
    mixer = Mixer(prebuffer_ms=0, max_buffer_ms=10_000)
    book = counter(24_000)
    mixer.apply_grant("book", FOREGROUND)
    feed(mixer, frames("book", book))
    render(mixer, 100)
    assert mixer.edge_mute() == ["book"]
    assert not render(mixer, 200).any()
    assert mixer.streams()[0].played_ms == 100.0  # held, not consumed: played stays true

    voice = quantized(tone(500, 100, amplitude=0.25))
    mixer.apply_grant("turn", DIALOG)  # the new user turn is not muted
    feed(mixer, frames("turn", voice))
    np.testing.assert_allclose(render(mixer, 100), voice, atol=LSB)

    mixer.edge_unmute(["book"])
    np.testing.assert_array_equal(render(mixer, 100), book[2400:4800])


def test_master_volume_scales_the_mix_when_the_mixer_applies_it():
    for applies, factor in ((True, volume_gain(50)), (False, 1.0)):
        mixer = Mixer(prebuffer_ms=0, applies_volume=applies)
        mixer.set_volume(50)
        signal = quantized(tone(440, 100, amplitude=0.4))
        mixer.apply_grant("s", FOREGROUND)
        feed(mixer, frames("s", signal))
        np.testing.assert_allclose(render(mixer, 100), signal * factor, atol=LSB)
    assert volume_gain(50) == 0.25 and volume_gain(100) == 1.0 and volume_gain(0) == 0.0


def test_clear_drops_buffered_audio_and_reports_what_was_played():
    mixer = Mixer(prebuffer_ms=0, max_buffer_ms=10_000)
    mixer.apply_grant("turn", DIALOG)
    feed(mixer, frames("turn", tone(440, 500), eos=True))
    render(mixer, 120)
    assert mixer.clear() == [Played("turn", 120.0, drained=True, cleared=True)]
    assert not render(mixer, 100).any()
    assert mixer.clear("turn") == [Played("turn", 120.0)]  # nothing pending any more
    feed(mixer, frames("turn", tone(440, 40), first_seq=30))  # the stream may go on afterwards
    assert render(mixer, 40).any()
    assert mixer.clear("unknown") == []
