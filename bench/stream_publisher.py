"""A producer process for bench_streams: `count` output streams, one 20 ms
frame of each every 20 ms, paced on the wall clock from a shared start time
with a fixed lead (as skills pace their streams).

    python -m bench.stream_publisher NATS_URL SITE PREFIX FIRST COUNT SECONDS LEAD_MS [FRAMES_PER_MESSAGE]

With FRAMES_PER_MESSAGE > 1 each message carries that many 20 ms frames of
PCM (the wire allows up to 10), sent when the first of them is due.

It connects as the harness of SITE (its creds in the environment, see
`bench.harness.peer_env`), prints `ready`, and reads the start time (epoch seconds) from
stdin, so slow interpreter start-ups do not eat into the paced run.
Every sample of every frame is VALUE, so the sum the client hears says how
many streams made it into each block."""

from __future__ import annotations

import asyncio
import sys
import time

import nats

from bench.harness import peer_options
from huxley_wire.audio import FRAME_MS, FRAME_SAMPLES, AudioFrame, encode_frame
from huxley_wire.subjects import Subjects

VALUE = 32  # 2**-10 of full scale: sums stay exact in float32 and fit PCM16 up to 1023 streams


def pcm() -> bytes:
    return VALUE.to_bytes(2, "little", signed=True) * FRAME_SAMPLES


async def main(
    url: str, site: str, prefix: str, first: int, count: int, seconds: float, lead_ms: float, per: int = 1
) -> None:
    nc = await nats.connect(url, pending_size=256 * 1024, **peer_options())
    print("ready", flush=True)
    start = float(await asyncio.to_thread(sys.stdin.readline))
    subjects = Subjects(site)
    ids = [f"{prefix}{i}" for i in range(first, first + count)]
    targets = [subjects.audio_out_of("bridge", sid) for sid in ids]
    chunk = pcm() * per
    frames = int(seconds * 1000 / FRAME_MS / per)
    late = 0
    for seq in range(frames):
        due = start + seq * per * FRAME_MS / 1000 - lead_ms / 1000
        delay = due - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -FRAME_MS / 1000:
            late += 1
        ts = int(due * 1e6)
        for sid, subject in zip(ids, targets, strict=True):
            await nc.publish(subject, encode_frame(AudioFrame(stream=sid, seq=seq, ts_us=ts, pcm=chunk)))
        await nc.flush()
    await nc.drain()
    print(f"late_ticks={late}", flush=True)


if __name__ == "__main__":
    a = sys.argv[1:]
    per = int(a[7]) if len(a) > 7 else 1
    asyncio.run(main(a[0], a[1], a[2], int(a[3]), int(a[4]), float(a[5]), float(a[6]), per))
