import pytest

from huxley_wire.subjects import InvalidToken, Subjects


def test_every_subject_carries_the_site():
    s = Subjects("kitchen")
    assert s.storage_kv("basic", "timers") == "huxley.kitchen.storage.kv.basic.timers"
    assert s.focus_notify("skill-host-1") == "huxley.kitchen.focus.notify.skill-host-1"
    assert s.audio_out_of("bridge", "a1") == "huxley.kitchen.audio.out.bridge.a1"
    assert s.focus_rpc_of("skill-timers") == "huxley.kitchen.focus.rpc.skill-timers"
    assert s.audio_mic_claim("skill-timers") == "huxley.kitchen.audio.mic.claim.skill-timers"
    assert s.health("focus") == "huxley.kitchen.health.focus"
    assert Subjects().everything == "huxley.home.>"


@pytest.mark.parametrize("bad", ["", "a.b", "*", ">", "a b", "x" * 65])
def test_tokens_cannot_smuggle_wildcards(bad):
    with pytest.raises(InvalidToken):
        Subjects().storage_kv("basic", bad)


def test_audio_subjects_are_recognised():
    s = Subjects()
    assert s.is_audio(s.audio_out_of("bridge", "x")) and s.is_audio(s.audio_mic_assistant())
    assert not s.is_audio(s.audio_ptt())
