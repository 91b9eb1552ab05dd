"""The stream pump and the claim session without a bus, as the core drives
them: frames, pacing, pause and resume, and a claim's end reported exactly
once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from huxley_sdk import AudioStream, ClaimEndReason, InputClaim
from huxley_skill_host import commands as c
from huxley_skill_host.claims import ClaimSession
from huxley_skill_host.core import HostCore
from huxley_skill_host.pacing import FrameChunker, Pacer
from huxley_skill_host.streams import StreamPump
from huxley_wire.audio import FRAME_BYTES, MAX_FRAME_PCM, AudioFrame
from huxley_wire.messages.focus import ActivityMeta, Behavior, Channel, EndReason, FocusChange, FocusState
from support.frames import places


class FakeTime:
    def __init__(self) -> None:
        self.now = 50.0
        self.slept = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds
        await asyncio.sleep(0)


def test_chunker_makes_whole_frames_and_an_even_rest():
    chunker = FrameChunker()
    assert chunker.push(b"\1" * 500) == []
    frames = chunker.push(b"\2" * 1500)
    assert [len(f) for f in frames] == [960, 960] and frames[0] == b"\1" * 500 + b"\2" * 460
    assert chunker.flush() == b"\2" * 80
    chunker.push(b"\3" * 7)
    assert chunker.flush() == b"\3" * 6


def test_pacer_allows_a_lead_then_real_time():
    pacer = Pacer(started=10.0, lead_ms=100)
    assert pacer.delay_s(10.0) == 0
    for _ in range(5):
        pacer.sent(FRAME_BYTES)  # 100 ms sent
    assert pacer.delay_s(10.0) == 0
    pacer.sent(FRAME_BYTES)
    assert pacer.delay_s(10.0) == pytest.approx(0.02)
    assert pacer.delay_s(10.5) == 0


def test_pacer_takes_the_frames_due_together_up_to_the_message_limit():
    frame = bytes(FRAME_BYTES)
    pacer = Pacer(started=10.0, lead_ms=100)
    assert pacer.take([frame] * 8, 10.0) == 6  # frames 0-5 start within the lead
    assert pacer.take([frame] * 8, 10.0) == 1  # the caller waited for the first: never zero
    assert pacer.take([frame] * 8, 10.5) == 8  # far behind: all of them are due
    late = Pacer(started=0.0, lead_ms=100)
    assert late.take([frame] * 30, 100.0) == MAX_FRAME_PCM // FRAME_BYTES  # one message's worth
    assert late.take([b"\0" * 100, frame], 100.0) == 2  # a short rest joins too


def stream_of(chunks: list[bytes], log: list[str]) -> AudioStream:
    async def play() -> AsyncIterator[bytes]:
        log.append("opened")
        try:
            for chunk in chunks:
                yield chunk
        finally:
            log.append("closed")

    return AudioStream(factory=play)


class Stream:
    """One stream: the real core decides, the real pump plays (no bus)."""

    def __init__(self, stream: AudioStream, send: Callable[[AudioFrame], Awaitable[None]], time: FakeTime):
        self.core = HostCore(60.0)
        self.effect_id = self.core.hold("books", stream, 0.0).effect_id
        self.over: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.pump = StreamPump(
            activity_id="a-1",
            skill="books",
            effect_id=self.effect_id,
            stream=stream,
            send=lambda frame: self.send(frame),
            done=lambda activity, result: self.run(self.core.pump_done(activity, result)),
            spawn=lambda coro, name: asyncio.get_running_loop().create_task(coro, name=name),
            lead_ms=100,
            clock=time.clock,
            sleep=time.sleep,
        )
        self.send = send

    def apply(self, state: FocusState, behavior: Behavior) -> None:
        change = FocusChange(
            seq=1,
            activity_id="a-1",
            channel=Channel.CONTENT,
            interface="books",
            state=state,
            behavior=behavior,
            gain=1.0,
            ramp_ms=0,
            meta=ActivityMeta(effect_id=self.effect_id),
        )
        self.run(self.core.on_focus(change, 0.0))

    def run(self, commands: list[c.Command]) -> None:
        for command in commands:
            if isinstance(command, c.StartPump):
                self.pump.start()
            elif isinstance(command, c.StopPump):
                self.pump.stop()
            elif isinstance(command, c.StreamOver):
                self.over.set_result(command.outcome)

    async def finished(self) -> str:
        return await asyncio.wait_for(self.over, 5)


async def test_a_stream_plays_to_the_end_in_frames_paced_in_real_time():
    frames: list[AudioFrame] = []
    log: list[str] = []
    time = FakeTime()

    async def send(frame: AudioFrame) -> None:
        frames.append(frame)

    pcm = bytes(range(256)) * 40  # 10240 bytes, odd chunk sizes below
    p = Stream(stream_of([pcm[:1001], pcm[1001:3000], pcm[3000:]], log), send, time)
    p.apply(FocusState.FOREGROUND, Behavior.PRIMARY)
    assert await p.finished() == "ended"
    assert log == ["opened", "closed"]
    assert [f.seq for f in frames] == places(frames)
    assert all(f.stream == "a-1" for f in frames)
    assert b"".join(f.pcm for f in frames) == pcm
    # Whole frames, those due together joined: frames 0-5 may go at once (the
    # 100 ms lead), so each chunk's share of them is one message; then one
    # frame every 20 ms.
    assert [len(f.pcm) for f in frames[:-2]] == [n * FRAME_BYTES for n in (1, 2, 3, 1, 1, 1, 1)]
    assert frames[-1].eos and frames[-1].pcm == b"" and not frames[-2].eos
    # 10240 bytes = 213.3 ms of audio, minus the 100 ms lead, waited in real time.
    assert time.slept == pytest.approx(0.2133 - 0.1 - (len(frames[-2].pcm) / 48000), abs=0.001)


async def test_pause_closes_the_iterator_and_foreground_calls_the_factory_again():
    frames: list[AudioFrame] = []
    log: list[str] = []
    time = FakeTime()
    position = 0
    saved = asyncio.Event()

    async def book() -> AsyncIterator[bytes]:
        nonlocal position
        log.append(f"start@{position}")
        try:
            while position < 40:
                yield bytes([position]) * FRAME_BYTES
                position += 1
        finally:
            log.append(f"saved@{position}")
            saved.set()

    p = Stream(AudioStream(factory=book), lambda f: _keep(frames, f), time)

    async def _keep(store: list[AudioFrame], frame: AudioFrame) -> None:
        store.append(frame)
        if len(store) == 5:
            p.apply(FocusState.BACKGROUND, Behavior.MUST_PAUSE)
        if len(store) == 6:
            pytest.fail("a paused stream sent a frame")

    p.send = lambda f: _keep(frames, f)
    p.apply(FocusState.FOREGROUND, Behavior.PRIMARY)
    await asyncio.wait_for(saved.wait(), 5)
    assert log == ["start@0", "saved@5"] and p.pump.starts == 1

    def resume_check(frame: AudioFrame) -> Awaitable[None]:
        frames.append(frame)
        return asyncio.sleep(0)

    p.send = resume_check
    p.apply(FocusState.BACKGROUND, Behavior.MAY_DUCK)  # ducked: plays again
    assert await p.finished() == "ended"
    assert log == ["start@0", "saved@5", "start@5", "saved@40"] and p.pump.starts == 2
    assert [f.seq for f in frames] == places(frames)  # seq continues across the pause
    assert frames[5].pcm[0] == 5  # resumed where the skill saved its position


async def test_none_stops_for_good_and_a_failing_iterator_is_failed():
    time = FakeTime()
    log: list[str] = []
    frames: list[AudioFrame] = []

    async def send(frame: AudioFrame) -> None:
        frames.append(frame)

    p = Stream(stream_of([b"\0" * 960] * 3, log), send, time)
    p.apply(FocusState.BACKGROUND, Behavior.MUST_PAUSE)
    p.apply(FocusState.NONE, Behavior.MUST_STOP)
    p.apply(FocusState.FOREGROUND, Behavior.PRIMARY)  # too late: stopping is final
    assert await p.finished() == "stopped" and log == [] and frames == []

    async def broken() -> AsyncIterator[bytes]:
        yield b"\0" * 960
        raise OSError("disk gone")

    q = Stream(AudioStream(factory=broken), send, time)
    q.apply(FocusState.FOREGROUND, Behavior.PRIMARY)
    assert await q.finished() == "failed" and "disk gone" in (q.pump.error or "")
    assert frames[-1].eos


class FakeMic:
    def __init__(self) -> None:
        self.handler: Callable[[bytes], Awaitable[None]] | None = None
        self.opened = asyncio.Event()
        self.closed = 0

    async def open(self, handler: Callable[[bytes], Awaitable[None]]) -> FakeMic:
        self.handler = handler
        self.opened.set()
        return self

    async def close(self) -> None:
        self.closed += 1
        self.handler = None


class Claim:
    """One held claim: the real core decides, the real session carries it out."""

    def __init__(self, claim: InputClaim, send: Callable[[AudioFrame], Awaitable[None]], mic: FakeMic):
        self.core = HostCore(60.0)
        self.effect_id = self.core.hold("caller", claim, 0.0).effect_id
        self.released: list[str] = []
        self.session = ClaimSession(
            skill="caller",
            claim=claim,
            effect_id=self.effect_id,
            send=send,
            release=self.release,
            ask_end=self.ask_end,
            open_mic=mic.open,
            lead_ms=100,
            clock=FakeTime().clock,
            sleep=FakeTime().sleep,
        )
        self.session.bind("c-1")

    async def release(self, activity: str) -> None:
        self.released.append(activity)

    def apply(self, state: FocusState, reason: EndReason | None = None) -> None:
        change = FocusChange(
            seq=1,
            activity_id="c-1",
            channel=Channel.COMMS,
            interface="caller",
            state=state,
            behavior=Behavior.PRIMARY,
            gain=1.0,
            ramp_ms=0,
            reason=reason,
            meta=ActivityMeta(effect_id=self.effect_id),
        )
        for command in self.core.on_focus(change, 0.0):
            if isinstance(command, c.GrantClaim):
                self.session.grant()
            elif isinstance(command, c.MuteClaim):
                self.session.mute()
            elif isinstance(command, c.EndClaim):
                asyncio.get_running_loop().create_task(
                    self.session.finish(command.reason, release=command.release)
                )

    async def ask_end(self, reason: ClaimEndReason) -> None:
        active = self.core.active_claim("caller")
        for command in self.core.end_claim(active.claim_id, reason, release=True) if active else []:
            assert isinstance(command, c.EndClaim)
            await self.session.finish(command.reason, release=command.release)


async def make_claim(speaker: AsyncIterator[bytes] | None = None):
    heard: list[bytes] = []
    ends: list[ClaimEndReason] = []
    frames: list[AudioFrame] = []
    mic = FakeMic()

    async def on_mic(pcm: bytes) -> None:
        heard.append(pcm)

    async def on_end(reason: ClaimEndReason) -> None:
        ends.append(reason)

    async def send(frame: AudioFrame) -> None:
        frames.append(frame)

    claim = InputClaim(on_mic_frame=on_mic, speaker_source=speaker, on_claim_end=on_end, title="Call")
    harness = Claim(claim, send, mic)
    return harness, mic, heard, ends, harness.released, frames


async def test_claim_hears_the_mic_while_foreground_and_ends_once_on_ptt():
    claim, mic, heard, ends, released, _ = await make_claim()
    claim.apply(FocusState.FOREGROUND)
    await asyncio.wait_for(mic.opened.wait(), 5)
    assert mic.handler is not None
    await mic.handler(b"\1\1")
    claim.apply(FocusState.NONE, EndReason.USER_PTT)
    assert await asyncio.wait_for(claim.session.handle().wait_end(), 5) is ClaimEndReason.USER_PTT
    claim.apply(FocusState.NONE, EndReason.RELEASED)
    await claim.ask_end(ClaimEndReason.ERROR)
    await asyncio.sleep(0)
    assert heard == [b"\1\1"] and ends == [ClaimEndReason.USER_PTT] and released == [] and mic.closed == 1


async def test_claim_speaker_runs_out_naturally_and_releases():
    async def speaker() -> AsyncIterator[bytes]:
        yield b"\5" * 2000

    claim, _mic, _, ends, released, frames = await make_claim(speaker())
    claim.apply(FocusState.FOREGROUND)
    assert await asyncio.wait_for(claim.session.handle().wait_end(), 5) is ClaimEndReason.NATURAL
    await asyncio.sleep(0)
    assert ends == [ClaimEndReason.NATURAL] and released == ["c-1"]
    assert b"".join(f.pcm for f in frames) == b"\5" * 2000 and frames[-1].eos


async def test_claim_handle_cancel_is_natural_and_idempotent():
    claim, mic, _, ends, released, _ = await make_claim()
    claim.apply(FocusState.FOREGROUND)
    await asyncio.wait_for(mic.opened.wait(), 5)
    handle = claim.session.handle()
    handle.cancel()
    handle.cancel()
    assert await asyncio.wait_for(handle.wait_end(), 5) is ClaimEndReason.NATURAL
    await asyncio.sleep(0)
    assert ends == [ClaimEndReason.NATURAL] and released == ["c-1"]
