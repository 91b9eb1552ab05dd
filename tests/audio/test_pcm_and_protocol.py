"""PCM helpers, device choice and the client protocol parser (pure)."""

from __future__ import annotations

import base64
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audio.signals import amplitude_at
from huxley_audio_io import client_protocol as proto
from huxley_audio_io.devices import Device, DeviceError, choose
from huxley_audio_io.pcm import Resampler, read_wav, to_float, to_pcm


@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=700), min_size=1, max_size=12))
def test_resampling_in_chunks_equals_resampling_in_one_piece(cuts):
    signal = np.sin(np.arange(4410) * 0.05).astype(np.float32)
    whole = Resampler(44_100).process(signal)
    chunked, at = [], 0
    resampler = Resampler(44_100)
    for size in [*cuts, len(signal)]:
        chunked.append(resampler.process(signal[at : at + size]))
        at += size
    np.testing.assert_allclose(np.concatenate(chunked), whole, atol=1e-6)


def mic_48k(freq: float, seconds: float) -> np.ndarray:
    t = np.arange(int(48_000 * seconds)) / 48_000
    return (0.5 * np.sin(2 * math.pi * freq * t)).astype(np.float32)


def through_in_20ms_chunks(signal: np.ndarray, resampler: Resampler) -> list[np.ndarray]:
    return [resampler.process(signal[at : at + 960]) for at in range(0, signal.size, 960)]


def test_the_48k_mic_keeps_1khz_and_every_chunk_is_exactly_20ms():
    resampler = Resampler(48_000)
    chunks = through_in_20ms_chunks(mic_48k(1000, 1.0), resampler)
    assert {c.size for c in chunks} == {480}  # 20 ms in, 20 ms out, from the first chunk on
    out = np.concatenate(chunks)[resampler.delay_samples + 480 :]  # past the delay and the filter's onset
    assert amplitude_at(out, 1000) == pytest.approx(0.5, rel=0.01)
    # No click at any of the 50 chunk boundaries: what is left after the tone is
    # the resampler's own noise floor.
    t = np.arange(out.size) / 24_000
    basis = np.stack([np.sin(2 * math.pi * 1000 * t), np.cos(2 * math.pi * 1000 * t)], axis=1)
    residual = out - basis @ np.linalg.lstsq(basis, out, rcond=None)[0]
    assert np.max(np.abs(residual)) < 1e-3
    assert resampler.starved == 0


@pytest.mark.parametrize("freq", [13_000, 16_000, 20_000])
def test_the_48k_mic_above_12khz_is_filtered_out_not_folded_back(freq):
    resampler = Resampler(48_000)
    out = np.concatenate(through_in_20ms_chunks(mic_48k(freq, 1.0), resampler))
    assert out.size == 24_000
    alias = 24_000 - freq  # where linear interpolation would fold it
    steady = out[resampler.delay_samples + 480 :]
    assert amplitude_at(steady, alias) < 0.5 * 10 ** (-60 / 20)  # at least 60 dB down
    assert float(np.max(np.abs(steady))) < 1e-2


@pytest.mark.parametrize(("rate", "chunk"), [(44_100, 882), (16_000, 320), (8_000, 160), (96_000, 1920)])
def test_other_device_rates_give_exact_20ms_chunks(rate, chunk):
    resampler = Resampler(rate)
    sizes = {resampler.process(np.zeros(chunk, dtype=np.float32)).size for _ in range(100)}
    assert sizes == {480} and resampler.starved == 0


def test_the_speaker_direction_is_exact_too():
    resampler = Resampler(24_000, 44_100)
    sizes = {resampler.process(np.zeros(480, dtype=np.float32)).size for _ in range(100)}
    assert sizes == {882} and resampler.starved == 0


def test_resampling_keeps_the_pitch():
    rate = 48_000
    t = np.arange(rate) / rate
    resampler = Resampler(rate)
    out = resampler.process((0.5 * np.sin(2 * math.pi * 440 * t)).astype(np.float32))
    assert out.size == 24_000
    assert amplitude_at(out[resampler.delay_samples + 480 :], 440) == pytest.approx(0.5, rel=0.01)


def test_pcm_conversion_clips_instead_of_wrapping():
    assert to_float(to_pcm(np.array([2.0, -2.0, 0.5], dtype=np.float32))).tolist() == [
        32767 / 32768,
        -1.0,
        0.5,
    ]


def test_wav_input_is_downmixed_and_resampled(tmp_path):
    import wave

    path = tmp_path / "stereo.wav"
    t = np.arange(48_000) / 48_000
    left = (0.4 * np.sin(2 * math.pi * 300 * t) * 32767).astype("<i2")
    stereo = np.stack([left, left], axis=1).tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(48_000)
        w.writeframes(stereo)
    pcm = read_wav(path)
    assert abs(len(pcm) // 2 - 24_000) <= 1
    assert amplitude_at(to_float(pcm)[:23_000], 300) == pytest.approx(0.4, rel=0.01)


DEVICES = [
    Device(0, "HDA Intel PCH: ALC3246 Analog", 2, 2, 48_000, "ALSA", default_input=True),
    Device(1, "USB Speakerphone", 1, 2, 48_000, "ALSA"),
    Device(2, "USB Headset", 1, 0, 44_100, "ALSA"),
    Device(3, "pulse", 32, 32, 44_100, "ALSA", default_output=True),
]


def test_devices_are_chosen_by_index_exact_name_or_unique_part():
    assert choose(DEVICES, None, "input").index == 0
    assert choose(DEVICES, None, "output").index == 3
    assert choose(DEVICES, "1", "output").name == "USB Speakerphone"
    assert choose(DEVICES, "usb headset", "input").index == 2
    assert choose(DEVICES, "speakerphone", "input").index == 1
    with pytest.raises(DeviceError, match="ambiguous"):
        choose(DEVICES, "USB", "input")
    with pytest.raises(DeviceError, match="no output device matches 'Headset'"):
        choose(DEVICES, "Headset", "output")  # the headset has no output channels
    with pytest.raises(DeviceError, match="index 7"):
        choose(DEVICES, "7", "input")
    with pytest.raises(DeviceError, match="no input device at all"):
        choose([], None, "input")


def b64(pcm: bytes) -> str:
    return base64.b64encode(pcm).decode()


def test_client_messages_parse_into_typed_models():
    assert isinstance(proto.parse_client_message('{"type":"ptt_start"}'), proto.PttStart)
    event = proto.parse_client_message(
        '{"type":"client_event","event":"doorbell.ring","data":{"x":1},"extra":2}'
    )
    assert isinstance(event, proto.ClientEvent) and event.data == {"x": 1}
    get = proto.parse_client_message('{"type":"get_session","id":7}')
    assert isinstance(get, proto.GetSession) and get.id == 7
    audio = proto.parse_client_message(json.dumps({"type": "audio", "data": b64(b"\x01\x00" * 480)}))
    assert isinstance(audio, proto.MicAudio)
    assert proto.decode_audio(audio, 48_000) == b"\x01\x00" * 480


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("{nope", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"type": "explode"}', "unknown type 'explode'"),
        ('{"data": "x"}', "unknown type None"),
        ('{"type": "get_session", "id": "7"}', "get_session"),
        ('{"type": "client_event"}', "client_event"),
        (b"\x00\x01", "binary frames"),
    ],
)
def test_malformed_client_messages_are_refused_with_a_reason(raw, reason):
    with pytest.raises(proto.ClientMessageError, match=reason) as caught:
        proto.parse_client_message(raw)
    assert not caught.value.refused


@pytest.mark.parametrize(
    "data, reason",
    [
        (b64(b"\x01" * 961), "even count"),
        (b64(b"\x00" * 48_002), "refused"),
        ("***not base64***", "not base64"),
        ("", "empty audio"),
    ],
)
def test_odd_oversize_or_broken_audio_is_refused(data, reason):
    message = proto.parse_client_message(json.dumps({"type": "audio", "data": data}))
    assert isinstance(message, proto.MicAudio)
    with pytest.raises(proto.ClientMessageError, match=reason) as caught:
        proto.decode_audio(message, 48_000)
    assert caught.value.refused


def test_backend_setting_accepts_websocket_for_web():
    from huxley_audio_io.settings import AudioSettings

    assert AudioSettings(audio_backend="websocket", _env_file=None).audio_backend == "web"  # type: ignore[call-arg]
    assert AudioSettings(audio_backend="file", _env_file=None).audio_backend == "file"  # type: ignore[call-arg]
