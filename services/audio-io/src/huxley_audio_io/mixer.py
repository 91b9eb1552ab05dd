"""The mixer: every output stream, gated by focus, summed into one speaker stream.

A pure core: no clock, no I/O. Each `render()` produces the next block
(20 ms by default) and is the only thing that moves time forward, so a
block counter is the mixer's clock.

Rules (docs/services/audio-io.md):
- A stream is heard only while its focus grant is audible: FOREGROUND at the
  grant's gain (1.0), BACKGROUND + MAY_DUCK at the ducked gain, ramped over
  the grant's ramp_ms. Any other state holds the stream silent without
  consuming it (a paused stream continues where it stopped); NONE drops it and
  every later frame of that id. Frames that arrive before any grant wait
  unheard (bounded in size and time).
- A PTT at the edge holds every stream present at that moment (`edge_mute`);
  nothing is consumed while held, so played counts stay true.
- Played samples are counted per stream and reported about every 100 ms,
  and at once when the end-of-stream frame has been played out (drained).
- A stream belongs to its producer (the `<owner>` of `audio.out.<owner>.<id>`,
  which permissions bind to the publisher): its grant's holder once focus
  said, else the first producer heard. Another producer's frames are refused,
  so nobody speaks into another part's granted stream (docs/security.md).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from huxley_audio_io.jitter import JitterBuffer
from huxley_audio_io.pcm import FULL_SCALE, to_float, to_pcm
from huxley_runtime.focus_client import ActivityStatus
from huxley_wire.audio import FRAME_SAMPLES, SAMPLE_RATE, SAMPLE_WIDTH, AudioFrame
from huxley_wire.messages.focus import Behavior, Channel, FocusState

SAMPLES_PER_MS = SAMPLE_RATE // 1000


def ms(samples: int) -> float:
    return samples / SAMPLES_PER_MS


def volume_gain(level: int) -> float:
    """Master volume 0-100 to an amplitude factor (square law: 50 is -12 dB,
    which sounds about half as loud)."""
    return (max(0, min(100, level)) / 100.0) ** 2


@dataclass(frozen=True, slots=True)
class Grant:
    """What focus last said about a stream's activity."""

    state: FocusState
    behavior: Behavior
    gain: float
    ramp_ms: int
    channel: Channel | None = None
    holder: str | None = None  # who may produce the stream (None: anyone, as before focus said)

    @property
    def audible(self) -> bool:
        if self.state is FocusState.FOREGROUND:
            return True
        return self.state is FocusState.BACKGROUND and self.behavior is Behavior.MAY_DUCK

    @classmethod
    def of(cls, status: ActivityStatus) -> Grant:
        if status.state == "pending" or status.behavior is None:
            # Acquired under a higher foreground: silent and held until promoted.
            return cls(FocusState.BACKGROUND, Behavior.MUST_PAUSE, 0.0, 0, status.channel, status.holder)
        state = FocusState(status.state)
        return cls(state, status.behavior, status.gain, status.ramp_ms, status.channel, status.holder)


STOP = Grant(FocusState.NONE, Behavior.MUST_STOP, 0.0, 0)


class PushResult(StrEnum):
    QUEUED = "queued"
    ENDED = "ended"  # the stream's activity got NONE: the frame is dropped
    OVERFLOW = "overflow"  # queued, but the buffer dropped its oldest audio
    FOREIGN = "foreign"  # another producer's stream: the frame is dropped


PUSH_WARNINGS = {
    PushResult.ENDED: "frame_after_grant_ended",
    PushResult.OVERFLOW: "stream_overflow",
    PushResult.FOREIGN: "frame_of_another_producer",
}


@dataclass(frozen=True, slots=True)
class Played:
    stream_id: str
    played_ms: float
    drained: bool = False  # nothing more of this stream will play (until new frames)
    cleared: bool = False  # ...because its unplayed audio was dropped, not played out


@dataclass(frozen=True, slots=True)
class StreamInfo:
    stream_id: str
    state: str  # playing, ducked, paused, muted, waiting_grant, idle
    gain: float
    buffered_ms: float
    played_ms: float


@dataclass(frozen=True, slots=True)
class Block:
    pcm: bytes
    audible: bool  # some stream contributed samples to this block
    played: list[Played]
    expired: list[str]  # ungranted streams given up on


class _Stream:
    __slots__ = (
        "buffer",
        "eos",
        "gain",
        "grant",
        "last_push",
        "muted",
        "owner",
        "played",
        "reported",
        "step",
        "target",
    )

    def __init__(self, buffer: JitterBuffer, tick: int) -> None:
        self.buffer = buffer
        self.grant: Grant | None = None
        self.gain = 0.0  # applied now
        self.target = 0.0
        self.step = 0.0  # gain change per sample while ramping
        self.muted = False  # held by a PTT at the edge
        self.eos = False  # the producer sent its end-of-stream frame
        self.played = 0  # samples sent to the speaker
        self.reported = 0
        self.last_push = tick
        self.owner: str | None = None  # the producer its frames must come from

    @property
    def playable(self) -> bool:
        return self.grant is not None and self.grant.audible and not self.muted

    @property
    def pending(self) -> bool:
        return bool(len(self.buffer)) or self.eos

    def set_gain(self, target: float, ramp_samples: int) -> None:
        self.target = target
        if ramp_samples <= 0 or self.gain == target:
            self.gain, self.step = target, 0.0
        else:
            self.step = (target - self.gain) / ramp_samples

    def gains(self, count: int) -> float | np.ndarray:
        if self.step == 0.0:
            return self.gain
        values: np.ndarray = self.gain + self.step * np.arange(1, count + 1, dtype=np.float32)
        values = np.minimum(values, self.target) if self.step > 0 else np.maximum(values, self.target)
        self.gain = float(values[-1])
        if self.gain == self.target:
            self.step = 0.0
        return values

    def state_name(self) -> str:
        if self.grant is None:
            return "waiting_grant"
        if self.muted:
            return "muted"
        if not self.grant.audible:
            return "paused"
        if not self.pending:
            return "idle"
        return "ducked" if self.grant.state is FocusState.BACKGROUND else "playing"


class Mixer:
    def __init__(
        self,
        *,
        block_samples: int = FRAME_SAMPLES,
        prebuffer_ms: int = 40,
        max_buffer_ms: int = 600,
        report_every_ms: int = 100,
        ungranted_ttl_ms: int = 5000,
        max_ungranted: int = 32,
        remember_ended: int = 4096,
        applies_volume: bool = True,
    ) -> None:
        self.block_samples = block_samples
        self._prebuffer = prebuffer_ms * SAMPLES_PER_MS
        self._max_buffer = max(max_buffer_ms * SAMPLES_PER_MS, self._prebuffer + block_samples)
        self._report_every = max(1, round(report_every_ms * SAMPLES_PER_MS / block_samples))
        self._ungranted_ttl = max(1, round(ungranted_ttl_ms * SAMPLES_PER_MS / block_samples))
        self._max_ungranted = max_ungranted
        self._remember_ended = remember_ended
        self.applies_volume = applies_volume
        self.volume = 100
        self._streams: dict[str, _Stream] = {}
        self._ended: OrderedDict[str, None] = OrderedDict()
        self._tick = 0

    # -- focus -----------------------------------------------------------------
    def silence(self, stream_id: str) -> list[Played]:
        """The activity was replaced (same identity): it ends now, whatever
        focus says of it later."""
        return self.apply_grant(stream_id, STOP)

    def apply_grant(self, stream_id: str, grant: Grant) -> list[Played]:
        """Follow focus. Returns the final report of a stream that got NONE."""
        if grant.state is FocusState.NONE:
            self._remember(stream_id)
            gone = self._streams.pop(stream_id, None)
            if gone is None or not (gone.pending or gone.played > gone.reported):
                return []
            return [Played(stream_id, ms(gone.played), drained=True, cleared=gone.pending)]
        self._ended.pop(stream_id, None)
        stream = self._stream(stream_id)
        if grant.holder is not None and stream.owner not in (None, grant.holder):
            stream.buffer.clear()  # queued before the grant by someone else: not the holder's audio
            stream.eos = False
        stream.owner = grant.holder or stream.owner
        was_audible = stream.playable and stream.gain > 0
        stream.grant = grant
        if not grant.audible:
            stream.set_gain(0.0, 0)  # paused: cut at once, keep the audio
        elif was_audible:
            stream.set_gain(grant.gain, grant.ramp_ms * SAMPLES_PER_MS)  # duck / unduck
        else:
            stream.set_gain(grant.gain, 0)  # starts or resumes at its level
        return []

    def has_ended(self, stream_id: str) -> bool:
        return stream_id in self._ended

    # -- producers -----------------------------------------------------------
    def push(self, frame: AudioFrame, owner: str | None = None) -> PushResult:
        """Queue a producer's frame; `owner` names the producer (None: unchecked)."""
        if frame.stream in self._ended:
            return PushResult.ENDED
        known = self._streams.get(frame.stream)
        if owner is not None and known is not None and known.owner not in (None, owner):
            return PushResult.FOREIGN
        stream = known or self._stream(frame.stream)
        stream.owner = stream.owner or owner
        stream.last_push = self._tick
        overflow = stream.buffer.push(frame.pcm) if frame.pcm else 0
        if frame.eos:
            stream.eos = True
        return PushResult.OVERFLOW if overflow else PushResult.QUEUED

    def clear(self, stream_id: str | None = None) -> list[Played]:
        """audio_clear: drop what is buffered for one stream (or every stream).
        Returns each cleared stream's played count."""
        ids = list(self._streams) if stream_id is None else [stream_id]
        out = []
        for sid in ids:
            stream = self._streams.get(sid)
            if stream is None:
                continue
            had_pending = stream.pending
            stream.buffer.clear()
            stream.eos = False
            stream.reported = stream.played
            out.append(Played(sid, ms(stream.played), drained=had_pending, cleared=had_pending))
        return out

    # -- the edge --------------------------------------------------------------
    def edge_mute(self) -> list[str]:
        """Hold every stream present now (PTT down). Returns their ids."""
        for stream in self._streams.values():
            stream.muted = True
            stream.set_gain(0.0, 0)
        return list(self._streams)

    def edge_unmute(self, stream_ids: list[str]) -> None:
        for sid in stream_ids:
            stream = self._streams.get(sid)
            if stream is not None and stream.muted:
                stream.muted = False
                if stream.grant is not None:
                    stream.set_gain(stream.grant.gain if stream.grant.audible else 0.0, 0)

    def set_volume(self, level: int) -> None:
        self.volume = max(0, min(100, level))

    # -- output ----------------------------------------------------------------
    def render(self) -> Block:
        """The next block of the speaker stream."""
        self._tick += 1
        n = self.block_samples
        # Streams playing a whole block at a steady gain are summed in one
        # matrix product; short or ramping ones one by one.
        steady: list[bytes] = []
        steady_gains: list[float] = []
        others: list[tuple[bytes, float | np.ndarray]] = []
        played: list[Played] = []
        for sid, stream in self._streams.items():
            if not stream.playable:
                continue
            if stream.buffer.ready(final=stream.eos):
                pcm = stream.buffer.pop(n)
                if pcm:
                    count = len(pcm) // SAMPLE_WIDTH
                    if count == n and stream.step == 0.0:
                        steady.append(pcm)
                        steady_gains.append(stream.gain)
                    else:
                        others.append((pcm, stream.gains(count)))
                    stream.played += count
            if stream.eos and not len(stream.buffer):
                stream.eos = False
                stream.reported = stream.played
                played.append(Played(sid, ms(stream.played), drained=True))
        out = np.zeros(n, dtype=np.float32)
        if steady:
            pcm16 = np.frombuffer(b"".join(steady), dtype="<i2").reshape(len(steady), n)
            gains = np.asarray(steady_gains, dtype=np.float32)
            out += gains @ pcm16.astype(np.float32) / np.float32(FULL_SCALE)
        for pcm, gain in others:
            chunk = to_float(pcm)
            out[: chunk.size] += chunk * gain
        if self._tick % self._report_every == 0:
            for sid, stream in self._streams.items():
                if stream.played > stream.reported:
                    stream.reported = stream.played
                    played.append(Played(sid, ms(stream.played)))
        if self.applies_volume and self.volume != 100:
            out *= volume_gain(self.volume)
        return Block(to_pcm(out), bool(steady or others), played, self._expire_ungranted())

    # -- introspection ---------------------------------------------------------
    def streams(self) -> list[StreamInfo]:
        return [
            StreamInfo(sid, s.state_name(), round(s.gain, 4), ms(len(s.buffer)), ms(s.played))
            for sid, s in self._streams.items()
        ]

    def stream_ids(self) -> list[str]:
        return list(self._streams)

    # -- internals -------------------------------------------------------------
    def _stream(self, stream_id: str) -> _Stream:
        stream = self._streams.get(stream_id)
        if stream is None:
            stream = _Stream(JitterBuffer(self._prebuffer, self._max_buffer), self._tick)
            self._streams[stream_id] = stream
            self._limit_ungranted()
        return stream

    def _remember(self, stream_id: str) -> None:
        self._ended[stream_id] = None
        self._ended.move_to_end(stream_id)
        while len(self._ended) > self._remember_ended:
            self._ended.popitem(last=False)

    def _limit_ungranted(self) -> None:
        waiting = [sid for sid, s in self._streams.items() if s.grant is None]
        for sid in waiting[: max(0, len(waiting) - self._max_ungranted)]:
            del self._streams[sid]

    def _expire_ungranted(self) -> list[str]:
        stale = [
            sid
            for sid, s in self._streams.items()
            if s.grant is None and self._tick - s.last_push > self._ungranted_ttl
        ]
        for sid in stale:
            del self._streams[sid]
        return stale
