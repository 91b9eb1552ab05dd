"""Audio-io: PTT-down -> content silent at the mixer output, and mixer CPU per stream.

PTT: the real service (web backend) with a real WebSocket client; a content
stream plays, the client sends `ptt_start`, and we time until the first block
the mixer renders without it. Baseline: the WebSocket ping round trip to the
same server, measured in the same run.

CPU: the pure mixer with N streams (push one 20 ms frame per stream, render
one block), thread CPU time per block. Baseline: the same with no stream.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time

import nats
import websockets

from bench.harness import BenchEnv, Measurement, latency
from huxley_audio_io.mixer import Block, Grant, Mixer
from huxley_audio_io.pcm import to_pcm
from huxley_audio_io.service import AudioService
from huxley_audio_io.settings import AudioSettings
from huxley_runtime.bus import settle
from huxley_wire.audio import FRAME_MS, AudioFrame, encode_frame, now_us
from huxley_wire.codec import encode
from huxley_wire.messages.focus import ActivityEvent, ActivityMeta, Behavior, Channel, ContentType, FocusState
from huxley_wire.permissions import Role

PRESSES = 60
PINGS = 200
CPU_BLOCKS = 1500
STREAM_COUNTS = (1, 4, 16)


def _tone(n: int) -> bytes:
    import numpy as np

    t = np.arange(n * 480) / 24_000
    return to_pcm((0.3 * np.sin(2 * np.pi * 440 * t)).astype("float32"))


def _event(seq: int, activity_id: str, state: FocusState) -> bytes:
    foreground = state is FocusState.FOREGROUND
    return encode(
        ActivityEvent(
            seq=seq,
            ts=time.time(),
            activity_id=activity_id,
            channel=Channel.CONTENT,
            interface="bench",
            holder="bridge",  # the owner its frames are published under (audio-io checks)
            content_type=ContentType.NONMIXABLE,
            state=state,
            behavior=Behavior.PRIMARY if foreground else Behavior.MUST_STOP,
            gain=1.0 if foreground else 0.0,
            ramp_ms=100,
            meta=ActivityMeta(),
        )
    )


async def _ptt(env: BenchEnv) -> list[Measurement]:
    site = env.site()
    settings = AudioSettings(
        nats_url=env.nats_url,
        site=site,
        data_dir=env.workdir / "audio",
        audio_backend="web",
        web_host="127.0.0.1",
        web_port=0,
        **env.auth(site).fields(Role.AUDIO_IO),
        _env_file=None,  # type: ignore[call-arg]
    )
    service = AudioService(settings)
    await service.start()
    nc = await env.connect(site)
    subjects = service.subjects
    audible = asyncio.Event()
    silenced = asyncio.Event()
    silent_at: list[float] = []
    pressed_at: list[float] = []
    current = {"stream": ""}

    def tap(block: Block) -> None:
        if block.audible:
            audible.set()
        elif pressed_at and len(silent_at) < len(pressed_at):
            silent_at.append(time.perf_counter())
            silenced.set()

    service.taps.append(tap)
    stop_seen = asyncio.Event()

    async def on_ptt(msg: nats.aio.msg.Msg) -> None:
        if json.loads(msg.data)["action"] == "stop":
            stop_seen.set()

    await nc.subscribe(subjects.audio_ptt(), cb=on_ptt)
    await settle(nc)
    chunk = _tone(1)

    async def produce() -> None:
        """20 ms frames of whatever stream is current, in real time, 100 ms ahead."""
        loop = asyncio.get_running_loop()
        started, seq = loop.time(), 0
        while True:
            frame = AudioFrame(stream=current["stream"], seq=seq, ts_us=now_us(), pcm=chunk)
            await nc.publish(subjects.audio_out_of("bridge", current["stream"]), encode_frame(frame))
            seq += 1
            await asyncio.sleep(max(0.0, started + seq * FRAME_MS / 1000 - 0.1 - loop.time()))

    latencies: list[float] = []
    cleared: list[float] = []
    pings: list[float] = []
    clear_seen = asyncio.Event()
    port = service.backend.port  # type: ignore[attr-defined]
    producer: asyncio.Task[None] | None = None
    try:
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
            for _ in range(PINGS):
                pong = await ws.ping()
                t0 = time.perf_counter()
                await pong
                pings.append((time.perf_counter() - t0) * 1e3)

            async def read() -> None:
                """The client: takes whatever the gateway sends, as a browser would."""
                async for raw in ws:
                    if '"audio_clear"' in str(raw) and pressed_at and len(cleared) < len(pressed_at):
                        cleared.append((time.perf_counter() - pressed_at[-1]) * 1e3)
                        clear_seen.set()

            reader = asyncio.create_task(read())
            seq = 0
            for press in range(PRESSES):
                stream = f"bench-{press}"
                if current["stream"]:
                    seq += 1
                    await nc.publish(
                        subjects.focus_event("activity"), _event(seq, current["stream"], FocusState.NONE)
                    )
                current["stream"] = stream
                seq += 1
                await nc.publish(subjects.focus_event("activity"), _event(seq, stream, FocusState.FOREGROUND))
                if producer is None:
                    producer = asyncio.create_task(produce())
                audible.clear()
                await asyncio.wait_for(audible.wait(), 10)  # the content is playing
                await asyncio.sleep(
                    random.uniform(0, FRAME_MS / 1000)
                )  # press at any phase of the block clock
                silenced.clear()
                clear_seen.clear()
                pressed_at.append(time.perf_counter())
                await ws.send('{"type":"ptt_start"}')
                await asyncio.wait_for(silenced.wait(), 10)
                await asyncio.wait_for(clear_seen.wait(), 10)
                latencies.append((silent_at[-1] - pressed_at[-1]) * 1e3)
                stop_seen.clear()
                await ws.send('{"type":"ptt_stop"}')
                await asyncio.wait_for(stop_seen.wait(), 10)
            reader.cancel()
    finally:
        if producer is not None:
            producer.cancel()
        await nc.close()
        await service.stop()
    baseline = latency("audio.ws_ping_rtt", pings, note="WebSocket ping round trip to the gateway (same run)")
    figure = latency(
        "audio.ptt_to_silent_mixer_output",
        latencies,
        baseline="audio.ws_ping_rtt",
        note=(
            "client sends ptt_start -> first block the mixer renders without the playing content "
            f"(the press renders a block at once instead of waiting for the next {FRAME_MS} ms boundary)"
        ),
    )
    at_client = latency(
        "audio.ptt_to_client_clear",
        cleared,
        baseline="audio.ws_ping_rtt",
        note="client sends ptt_start -> the client receives audio_clear (queued audio dropped before it)",
    )
    return [baseline, figure, at_client]


def _mixer_block_us(streams: int) -> list[float]:
    mixer = Mixer(prebuffer_ms=0)
    grant = Grant(FocusState.FOREGROUND, Behavior.PRIMARY, 1.0, 100, Channel.CONTENT)
    ducked = Grant(FocusState.BACKGROUND, Behavior.MAY_DUCK, 0.3, 100, Channel.CONTENT)
    ids = [f"s{i}" for i in range(streams)]
    for sid in ids:
        mixer.apply_grant(sid, grant)
    pcm = _tone(1)
    samples = []
    for block in range(CPU_BLOCKS):
        if block % 50 == 25:  # keep some ramps going: duck and unduck half the streams
            for sid in ids[::2]:
                mixer.apply_grant(sid, ducked if block % 100 == 25 else grant)
        started = time.thread_time()
        for sid in ids:
            mixer.push(AudioFrame(stream=sid, seq=block, ts_us=0, pcm=pcm))
        mixer.render()
        samples.append((time.thread_time() - started) * 1e6)
    return samples


def _cpu() -> list[Measurement]:
    empty = _mixer_block_us(0)
    out = [
        Measurement(
            name="audio.mixer_block_cpu_empty",
            unit="us",
            p50=statistics.median(empty),
            p99=sorted(empty)[int(len(empty) * 0.99)],
            value=statistics.fmean(empty),
            n=len(empty),
            note="thread CPU of one 20 ms block with no stream (the mixer's fixed cost)",
        )
    ]
    per_stream = {}
    for count in STREAM_COUNTS:
        samples = _mixer_block_us(count)
        per_stream[count] = (statistics.fmean(samples) - statistics.fmean(empty)) / count
        out.append(
            Measurement(
                name=f"audio.mixer_block_cpu_{count}_streams",
                unit="us",
                p50=statistics.median(samples),
                p99=sorted(samples)[int(len(samples) * 0.99)],
                value=statistics.fmean(samples),
                n=len(samples),
                baseline="audio.mixer_block_cpu_empty",
                note=f"push one frame of each of {count} streams and render a block (half of them ramping)",
            )
        )
    cost = per_stream[max(STREAM_COUNTS)]
    out.append(
        Measurement(
            name="audio.mixer_cpu_per_stream",
            unit="us",
            value=cost,
            n=CPU_BLOCKS,
            baseline="audio.mixer_block_cpu_empty",
            note=(
                f"marginal CPU per stream per 20 ms block at {max(STREAM_COUNTS)} streams = "
                f"{cost / (FRAME_MS * 10):.3f}% of one core"
            ),
            extra={"per_stream_us": {str(k): round(v, 2) for k, v in per_stream.items()}},
        )
    )
    return out


async def run(env: BenchEnv) -> list[Measurement]:
    return [*await _ptt(env), *_cpu()]
