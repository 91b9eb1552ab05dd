"""Audio-io under test: the real service on the test nats-server, driven the
way its peers drive it (focus's ActivityEvents, producers' frames, a real
WebSocket client)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import websockets
from nats.aio.client import Client
from nats.aio.msg import Msg

from audio.signals import tone
from huxley_audio_io.pcm import to_pcm
from huxley_audio_io.service import AudioService
from huxley_audio_io.settings import AudioSettings
from huxley_runtime.bus import settle
from huxley_wire.audio import FRAME_BYTES, AudioFrame, encode_frame, now_us
from huxley_wire.codec import encode
from huxley_wire.messages.audio import decode_played
from huxley_wire.messages.focus import (
    ActivityEvent,
    ActivityKind,
    ActivityMeta,
    Behavior,
    Channel,
    ContentType,
    EndReason,
    FocusState,
)
from huxley_wire.subjects import Subjects
from support.services import running

REPO = Path(__file__).resolve().parents[2]
WAIT_S = 10.0  # failure bound only; every wait ends on an event
PRODUCER = "bridge"  # the holder of every activity the rig announces, and its frames' owner


@pytest.fixture
def audio_settings(nats_url: str, site: str, tmp_path: Path) -> AudioSettings:
    return AudioSettings(
        nats_url=nats_url,
        site=site,
        data_dir=tmp_path / "data",
        personas_dir=REPO / "personas",
        audio_backend="web",
        web_host="127.0.0.1",
        web_port=0,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
async def gateway(audio_settings: AudioSettings) -> AsyncIterator[AudioService]:
    async with running(AudioService, audio_settings) as service:
        yield service


class Watch:
    """Every message on a subject, in order, waited for by predicate."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Msg] = asyncio.Queue()
        self.seen: list[Msg] = []

    async def on_msg(self, msg: Msg) -> None:
        self.seen.append(msg)
        await self.queue.put(msg)

    async def next(self, where: Callable[[Msg], bool] = lambda m: True, timeout: float = WAIT_S) -> Msg:
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.queue.get()
                if where(msg):
                    return msg

    async def next_json(
        self, where: Callable[[dict[str, Any]], bool] = lambda o: True, timeout: float = WAIT_S
    ) -> dict[str, Any]:
        msg = await self.next(lambda m: where(json.loads(m.data)), timeout)
        return json.loads(msg.data)


class PlayedWatch(Watch):
    """audio.played, with each PlayedBatch taken as one PlayedEvent per
    stream (in the batch's order), so a test waits for a stream's report
    whichever message carried it."""

    async def on_msg(self, msg: Msg) -> None:
        for played in decode_played(msg.data):
            await super().on_msg(Msg(msg._client, subject=msg.subject, data=encode(played)))


class Bus:
    def __init__(self, nc: Client, site: str) -> None:
        self.nc = nc
        self.subjects = Subjects(site)
        self._seq = 0
        self.produced: dict[str, int] = {}  # frames published so far by produce()
        self._progress = asyncio.Event()

    async def watch(self, subject: str) -> Watch:
        watch = PlayedWatch() if subject == self.subjects.audio_played() else Watch()
        await self.nc.subscribe(subject, cb=watch.on_msg)
        await settle(self.nc)
        return watch

    async def focus(
        self,
        activity_id: str,
        channel: Channel,
        state: FocusState,
        *,
        content_type: ContentType = ContentType.NONMIXABLE,
        reason: EndReason | None = None,
        **meta: Any,
    ) -> None:
        """Publish the ActivityEvent focus would publish for this transition."""
        self._seq += 1
        if state is FocusState.FOREGROUND:
            behavior, gain = Behavior.PRIMARY, 1.0
        elif state is FocusState.BACKGROUND and content_type is ContentType.MIXABLE:
            behavior, gain = Behavior.MAY_DUCK, 0.3
        elif state is FocusState.BACKGROUND:
            behavior, gain = Behavior.MUST_PAUSE, 0.0
        else:
            behavior, gain = Behavior.MUST_STOP, 0.0
        kind = {
            Channel.COMMS: ActivityKind.CLAIM,
            Channel.CONTENT: ActivityKind.STREAM,
            Channel.DIALOG: ActivityKind.TURN,
        }.get(channel, ActivityKind.OTHER)
        event = ActivityEvent(
            seq=self._seq,
            ts=0.0,
            activity_id=activity_id,
            channel=channel,
            interface=meta.pop("interface", "test"),
            holder=PRODUCER,  # audio-io plays an activity's frames from its holder only
            content_type=content_type,
            state=state,
            behavior=behavior,
            gain=gain,
            ramp_ms=100,
            reason=reason,
            meta=ActivityMeta(kind=kind, **meta),
        )
        await self.nc.publish(self.subjects.focus_event("activity"), encode(event))
        await self.nc.flush()

    async def frames(
        self, stream: str, pcm: bytes, *, first_seq: int = 0, eos: bool = False, owner: str = PRODUCER
    ) -> int:
        """Publish PCM as 20 ms output frames at once (keep it under the jitter bound)."""
        seq = first_seq
        for offset in range(0, len(pcm), FRAME_BYTES):
            frame = AudioFrame(stream=stream, seq=seq, ts_us=now_us(), pcm=pcm[offset : offset + FRAME_BYTES])
            await self.nc.publish(self.subjects.audio_out_of(owner, stream), encode_frame(frame))
            seq += 1
        if eos:
            frame = AudioFrame(stream=stream, seq=seq, ts_us=now_us(), pcm=b"", eos=True)
            await self.nc.publish(self.subjects.audio_out_of(owner, stream), encode_frame(frame))
            seq += 1
        await self.nc.flush()
        return seq

    async def stream(
        self, stream: str, pcm: bytes, *, lead_ms: int = 100, eos: bool = True, owner: str = PRODUCER
    ) -> None:
        """Publish PCM as a producer would: 20 ms frames in real time, a little ahead."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        seq = 0
        for offset in range(0, len(pcm), FRAME_BYTES):
            frame = AudioFrame(stream=stream, seq=seq, ts_us=now_us(), pcm=pcm[offset : offset + FRAME_BYTES])
            await self.nc.publish(self.subjects.audio_out_of(owner, stream), encode_frame(frame))
            seq += 1
            ahead = started + seq * 0.02 - lead_ms / 1000 - loop.time()
            if ahead > 0:
                await asyncio.sleep(ahead)
        if eos:
            end = AudioFrame(stream=stream, seq=seq, ts_us=now_us(), pcm=b"", eos=True)
            await self.nc.publish(self.subjects.audio_out_of(owner, stream), encode_frame(end))
        await self.nc.flush()

    async def produce(self, stream: str, freq: float, *, lead_ms: int = 100, owner: str = PRODUCER) -> None:
        """A producer pacing a tone in real time with a little lead, until cancelled;
        `owner` must be the holder of the stream's activity for audio-io to play it."""
        loop = asyncio.get_running_loop()
        seq, started = 0, loop.time()
        while True:
            pcm = to_pcm(tone(freq, 20, amplitude=0.5, start_sample=seq * 480))
            frame = AudioFrame(stream=stream, seq=seq, ts_us=now_us(), pcm=pcm)
            await self.nc.publish(self.subjects.audio_out_of(owner, stream), encode_frame(frame))
            seq += 1
            self.produced[stream] = seq
            self._progress.set()
            ahead = started + seq * 0.02 - lead_ms / 1000 - loop.time()
            if ahead > 0:
                await asyncio.sleep(ahead)

    async def until_produced(self, stream: str, frames: int, timeout: float = WAIT_S) -> None:
        """Wait until produce() has published `frames` frames of the stream."""
        async with asyncio.timeout(timeout):
            while self.produced.get(stream, 0) < frames:
                self._progress.clear()
                await self._progress.wait()


@pytest.fixture
def bus(nc: Client, site: str) -> Bus:
    return Bus(nc, site)


class WebClient:
    """A real WebSocket client of the gateway, with its messages sorted."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws

    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(message if isinstance(message, str | bytes) else json.dumps(message))

    async def next(self, *types: str, timeout: float = WAIT_S, **fields: Any) -> dict[str, Any]:
        """The next message of one of `types` (with these field values), skipping others."""
        async with asyncio.timeout(timeout):
            while True:
                message = json.loads(await self.ws.recv())
                if (not types or message["type"] in types) and all(
                    message.get(k) == v for k, v in fields.items()
                ):
                    return message


def client_url(service: AudioService, query: str = "") -> str:
    port = service.backend.port  # type: ignore[attr-defined]
    return f"ws://127.0.0.1:{port}/ws{query}"
