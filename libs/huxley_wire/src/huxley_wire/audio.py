"""Binary codec for audio frames: 20 ms of PCM16 24 kHz mono (960 bytes).

A frame is a msgpack array `[v, stream, seq, ts_us, flags, pcm]`:
  v       schema version (1)
  stream  stream id (the focus activity id for output, `mic` for the microphone)
  seq     place in the stream of the message's first 20 ms frame, from 0
  ts_us   capture or produce time, microseconds since the Unix epoch
  flags   bit 0 = end of stream (the producer has nothing more to send)
  pcm     raw little-endian PCM16 samples (may be empty on an end-of-stream frame)
"""

from __future__ import annotations

import math
import sys
import time
from array import array
from dataclasses import dataclass

import msgpack

from huxley_wire.errors import ErrorCode, WireError

SAMPLE_RATE = 24_000
SAMPLE_WIDTH = 2
CHANNELS = 1
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000  # 480
FRAME_BYTES = FRAME_SAMPLES * SAMPLE_WIDTH  # 960
BYTES_PER_MS = SAMPLE_RATE * SAMPLE_WIDTH // 1000  # 48
# A producer may batch a few frames; anything larger is refused.
MAX_FRAME_PCM = FRAME_BYTES * 10
AUDIO_SCHEMA_VERSION = 1
FLAG_EOS = 1


@dataclass(frozen=True, slots=True)
class AudioFrame:
    stream: str
    seq: int
    ts_us: int
    pcm: bytes
    eos: bool = False

    @property
    def duration_ms(self) -> float:
        return len(self.pcm) / BYTES_PER_MS


def frames_in(pcm: bytes) -> int:
    """The 20 ms frames a message's PCM holds (a short last one counts, and
    so does an empty end-of-stream): the next message's `seq` is this much
    higher (a producer may join the frames it sends at once)."""
    return max(1, -(-len(pcm) // FRAME_BYTES))


def now_us() -> int:
    return time.time_ns() // 1000


def check_pcm(pcm: bytes, limit: int = MAX_FRAME_PCM) -> None:
    if len(pcm) % SAMPLE_WIDTH:
        raise WireError(ErrorCode.INVALID, f"PCM16 needs an even byte count, got {len(pcm)}")
    if len(pcm) > limit:
        raise WireError(ErrorCode.TOO_LARGE, f"audio frame of {len(pcm)} bytes, limit {limit}")


def encode_frame(frame: AudioFrame) -> bytes:
    check_pcm(frame.pcm)
    flags = FLAG_EOS if frame.eos else 0
    packed: bytes = msgpack.packb(
        [AUDIO_SCHEMA_VERSION, frame.stream, frame.seq, frame.ts_us, flags, frame.pcm],
        use_bin_type=True,
    )
    return packed


def decode_frame(data: bytes) -> AudioFrame:
    try:
        items = msgpack.unpackb(data, raw=False, use_list=False)
    except Exception as exc:  # msgpack raises several unrelated types
        raise WireError(ErrorCode.BAD_JSON, f"audio frame is not msgpack: {exc}") from None
    if type(items) is not tuple or len(items) != 6:
        raise WireError(ErrorCode.INVALID, "audio frame must be [v, stream, seq, ts_us, flags, pcm]")
    version, stream, seq, ts_us, flags, pcm = items
    if version != AUDIO_SCHEMA_VERSION:
        raise WireError(ErrorCode.BAD_VERSION, f"audio frame version {version!r} not supported")
    # Exact types (a bool is not a seq number): this runs for every frame of every stream.
    if not (
        type(stream) is str
        and type(seq) is int
        and type(ts_us) is int
        and type(flags) is int
        and type(pcm) is bytes
    ):
        raise WireError(ErrorCode.INVALID, "audio frame fields have the wrong types")
    if len(pcm) % SAMPLE_WIDTH or len(pcm) > MAX_FRAME_PCM:
        check_pcm(pcm)  # raises, with the reason
    return AudioFrame(stream, seq, ts_us, pcm, bool(flags & FLAG_EOS))


def samples(pcm: bytes) -> array[int]:
    """PCM16 little-endian bytes as an array of ints."""
    out = array("h")
    out.frombytes(pcm)
    if sys.byteorder == "big":
        out.byteswap()
    return out


def level_dbfs(pcm: bytes) -> float:
    """RMS level in dBFS (-inf for silence or empty input)."""
    if len(pcm) < SAMPLE_WIDTH:
        return -math.inf
    values = samples(pcm[: len(pcm) - len(pcm) % SAMPLE_WIDTH])
    mean_square = sum(v * v for v in values) / len(values)
    if mean_square == 0:
        return -math.inf
    return 10 * math.log10(mean_square / (32768.0 * 32768.0))


def frames_of(pcm: bytes, frame_bytes: int = FRAME_BYTES) -> list[bytes]:
    """Split PCM into frames of `frame_bytes`; the last one may be shorter."""
    return [pcm[i : i + frame_bytes] for i in range(0, len(pcm), frame_bytes)]


def silence(ms: int) -> bytes:
    return bytes(ms * BYTES_PER_MS)
