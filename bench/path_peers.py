"""A skill's stream as its own process, for bench_paths: the skill-host's
real StreamPump (pacing with its 120 ms lead, framing, seq, end of stream)
driving a stream, each frame sent as skill-host's `Playback.send_frame`
sends it (encode_frame, publish on audio.out.<owner>.<stream>).

    python -m bench.path_peers NATS_URL <paced|burst> FRAMES
    python -m bench.path_peers ws URL   (the model socket's hop alone, see ws_hop)

`paced`: the skill's iterator has its audio at once, the pump releases one
frame every 20 ms. `burst`: the iterator yields 100 ms every 100 ms (a
network stream, a TTS), which the pump sends at once, as one message of
five frames (PERF-16). The first bytes of each 20 ms frame's PCM carry the send time (CLOCK_MONOTONIC,
written just before encoding), a sequence number and flags, as in
bench/transport_peers.py; audio-io's bench tap reads them at its intake.
It connects as the harness of $HUXLEY_SITE, under the owner `bridge`.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
import sys
import time
from collections.abc import AsyncIterator

import nats

from bench.harness import peer_options
from bench.transport_peers import BURST, BURST_EVERY_S, END, HEADER, LAST_OF_BURST, WARMUP, WARMUP_FRAMES
from huxley_sdk import AudioStream
from huxley_skill_host.core import PumpResult
from huxley_skill_host.streams import StreamPump
from huxley_wire.audio import FRAME_BYTES, AudioFrame, encode_frame
from huxley_wire.subjects import Subjects

LEAD_MS = 120  # skill-host's default stream_lead_ms
OWNER = "bridge"  # the harness may publish output audio under this owner


def flags_of(n: int, mode: str) -> int:
    if n < WARMUP_FRAMES:
        return WARMUP
    last = mode == "burst" and (n - WARMUP_FRAMES) % BURST == BURST - 1
    return LAST_OF_BURST if last else 0


async def audio(mode: str, frames: int) -> AsyncIterator[bytes]:
    silence = bytes(FRAME_BYTES)
    if mode == "paced":
        for _ in range(WARMUP_FRAMES + frames):
            yield silence
        return
    loop = asyncio.get_running_loop()
    start = loop.time()
    for k in range((WARMUP_FRAMES + frames) // BURST):
        await asyncio.sleep(max(0.0, start + k * BURST_EVERY_S - loop.time()))
        yield silence * BURST


async def main(url: str, mode: str, frames: int) -> None:
    nc = await nats.connect(url, **peer_options())
    subjects = Subjects(os.environ["HUXLEY_SITE"])
    sent = 0

    async def send_frame(frame: AudioFrame) -> None:
        """Each 20 ms frame of the message stamped (the pump joins the frames
        it sends at once), then published as Playback.send_frame does."""
        nonlocal sent
        now = time.monotonic_ns()
        stamped = []
        for i in range(0, max(1, len(frame.pcm)), FRAME_BYTES):
            flags = END if frame.eos else flags_of(sent, mode)
            stamped.append(HEADER.pack(now, sent, flags) + frame.pcm[i + HEADER.size : i + FRAME_BYTES])
            sent += 1
        pcm = b"".join(stamped)
        pcm += bytes(len(pcm) % 2)  # end of stream: the stamp alone, padded to whole samples
        frame = dataclasses.replace(frame, pcm=pcm)
        await nc.publish(subjects.audio_out_of(OWNER, frame.stream), encode_frame(frame))

    finished = asyncio.Event()

    def done(_activity: str, result: PumpResult) -> None:
        if result != "ended":
            print(f"pump {result}", file=sys.stderr, flush=True)
        finished.set()

    pump = StreamPump(
        activity_id=f"bench-path-{mode}",
        skill="bench",
        effect_id="e1",
        stream=AudioStream(factory=lambda: audio(mode, frames)),
        send=send_frame,
        done=done,
        spawn=lambda coro, name: asyncio.create_task(coro, name=name),
        lead_ms=LEAD_MS,
    )
    pump.start()
    await finished.wait()
    await nc.drain()


async def ws_hop(url: str) -> None:
    """The model socket's hop alone: JSON deltas from a WebSocket server, read
    with the websockets client; prints each measured frame's latency (ms) and
    whether it ended a burst, as one JSON line at the server's END frame."""
    import json

    import websockets

    samples: list[tuple[float, bool]] = []
    async with websockets.connect(url, max_size=None) as ws:
        async for raw in ws:
            now = time.monotonic_ns()
            sent, _seq, flags = HEADER.unpack(base64.b64decode(json.loads(raw)["delta"])[: HEADER.size])
            if flags & END:
                break
            if not flags & WARMUP:
                samples.append(((now - sent) / 1e6, bool(flags & LAST_OF_BURST)))
    print(json.dumps(samples), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "ws":
        asyncio.run(ws_hop(sys.argv[2]))
    else:
        asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
