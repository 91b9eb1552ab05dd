from huxley_cli.supervisor import RestartPolicy
from huxley_cli.tap import format_message
from huxley_wire.audio import AudioFrame, encode_frame, silence


def test_control_messages_print_as_compact_json():
    line = format_message("huxley.home.focus.event.activity", b'{"v": 1, "state": "foreground"}')
    assert line.endswith('huxley.home.focus.event.activity {"v":1,"state":"foreground"}')


def test_requests_are_marked():
    assert "(request)" in format_message("huxley.home.focus.rpc", b'{"v":1}', reply="_INBOX.x")


def test_audio_frames_print_one_summary_line():
    tone = (b"\x00\x40" + b"\x00\xc0") * 240
    line = format_message("huxley.home.audio.out.a1", encode_frame(AudioFrame("a1", 7, 0, tone)), audio=True)
    assert "AUDIO stream=a1 seq=7 bytes=960 level=-6.0 dBFS" in line
    quiet = format_message("x", encode_frame(AudioFrame("m", 0, 0, silence(20), eos=True)), audio=True)
    assert "level=silent eos" in quiet


def test_garbage_is_described_not_fatal():
    assert "not JSON" in format_message("huxley.home.x", b"\xff\xfe")
    assert "undecodable" in format_message("huxley.home.audio.out.a", b"\xc1", audio=True)
    assert "<empty>" in format_message("huxley.home.x", b"")


def test_restart_backoff_grows_then_resets_after_a_stable_run():
    policy = RestartPolicy(base_s=0.5, max_s=4, stable_after_s=30)
    assert [policy.after_exit(1) for _ in range(5)] == [0.5, 1, 2, 4, 4]
    assert policy.after_exit(60) == 0.5
