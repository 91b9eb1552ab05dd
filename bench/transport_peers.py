"""One side of a bare-transport measurement, as its own process.

    python -m bench.transport_peers sub <transport> <address>
    python -m bench.transport_peers pub <transport> <address> <paced|burst> <frames>

Every frame is 960 bytes (20 ms of 24 kHz 16-bit mono PCM); its first bytes
carry the publisher's CLOCK_MONOTONIC time at send (system-wide on Linux, so
the two processes compare it), a sequence number and flags. The subscriber
prints `ready <port>` once it can receive, and at the end one JSON line: the
latency in ms of every measured frame and whether it ended a burst.

Transports: `tcp` (length-prefixed frames on one socket: the floor),
`wyoming` (the wyoming package's event framing over TCP, no broker),
`mqtt` (paho-mqtt through a mosquitto at <address>, QoS 0), `nats` (nats-py
with its defaults), `nats_small_pending` (nats-py with a pending buffer
smaller than a frame, so every publish is handed to the socket at once) and
`nats_inline` (nats-py with its defaults, the subscriber taking each frame in
the client's reader, as our audio subscribers do and as paho's network thread
hands MQTT messages over: no queue and task hop per message).
The NATS peers connect as the harness of $HUXLEY_SITE, with the creds
`bench.harness.peer_env` puts in their environment (authentication is on).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

FRAME_BYTES = 960
HEADER = struct.Struct("!QIB")  # send time (ns), sequence, flags
WARMUP, LAST_OF_BURST, END = 1, 2, 4
PACE_S = 0.020
BURST = 5
BURST_EVERY_S = 0.100  # a 100 ms model delta is five frames at once
WARMUP_FRAMES = 10
IDLE_TIMEOUT_S = 5.0
TOPIC = "bench.transport.frames"


def nats_topic() -> str:
    """NATS permissions bind the harness to its site's subjects."""
    return f"huxley.{os.environ['HUXLEY_SITE']}.{TOPIC}"


Send = Callable[[bytes], Awaitable[None]]


def frame(seq: int, flags: int) -> bytes:
    head = HEADER.pack(time.monotonic_ns(), seq, flags)
    return head + bytes(FRAME_BYTES - len(head))


class Received:
    """What the subscriber saw, decoded as frames arrive."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, bool]] = []
        self.done = threading.Event()

    def got(self, data: bytes) -> None:
        now = time.monotonic_ns()
        sent, _seq, flags = HEADER.unpack_from(data)
        if flags & END:
            self.done.set()
            return
        if not flags & WARMUP:
            self.samples.append(((now - sent) / 1e6, bool(flags & LAST_OF_BURST)))


# -- subscribers -------------------------------------------------------------------


async def sub_stream(transport: str, received: Received) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nodelay(writer)
        while not received.done.is_set():
            if transport == "tcp":
                size = int.from_bytes(await reader.readexactly(4))
                received.got(await reader.readexactly(size))
            else:
                event = await async_read_event(reader)
                if event is None:
                    break
                received.got(event.payload or b"")
        writer.close()

    from wyoming.event import async_read_event

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
    await wait_done(received)
    server.close()


async def sub_nats(address: str, received: Received, inline: bool) -> None:
    import nats

    from bench.harness import peer_options

    nc = await nats.connect(address, **peer_options())

    async def cb(msg: Any) -> None:
        received.got(msg.data)

    if inline:  # in the reader, as audio-io and the bridge take frames (and paho's thread does)
        from huxley_runtime.inline_sub import subscribe_inline

        await subscribe_inline(nc, nats_topic(), lambda _subject, data: received.got(data))
    else:
        await nc.subscribe(nats_topic(), cb=cb)
    await nc.flush()
    print("ready 0", flush=True)
    await wait_done(received)
    await nc.close()


async def sub_mqtt(address: str, received: Received) -> None:
    subscribed = threading.Event()
    client = mqtt_client(address)
    client.on_message = lambda _c, _u, msg: received.got(msg.payload)
    client.on_subscribe = lambda *_: subscribed.set()
    client.loop_start()
    client.subscribe(TOPIC, qos=0)
    await asyncio.to_thread(subscribed.wait, 10)
    print("ready 0", flush=True)
    await wait_done(received)
    client.loop_stop()
    client.disconnect()


async def wait_done(received: Received) -> None:
    """Until the END frame, or until nothing came for a while (a lost frame)."""
    seen = -1
    while not received.done.is_set():
        await asyncio.to_thread(received.done.wait, IDLE_TIMEOUT_S)
        if len(received.samples) == seen:
            break
        seen = len(received.samples)


def mqtt_client(address: str) -> Any:
    from paho.mqtt.client import Client
    from paho.mqtt.enums import CallbackAPIVersion

    host, port = address.rsplit(":", 1)
    client = Client(CallbackAPIVersion.VERSION2)
    client.connect(host, int(port))
    # paho leaves Nagle on: a burst would wait for delayed ACKs (~40 ms).
    sock = client.socket()
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return client


# -- publishers --------------------------------------------------------------------


async def publisher(transport: str, address: str) -> tuple[Send, Callable[[], Awaitable[None]]]:
    """(send one frame, close) for the transport."""
    if transport in ("tcp", "wyoming"):
        from wyoming.audio import AudioChunk
        from wyoming.event import async_write_event

        _reader, writer = await asyncio.open_connection("127.0.0.1", int(address))
        nodelay(writer)

        async def send_stream(data: bytes) -> None:
            if transport == "tcp":
                writer.write(len(data).to_bytes(4) + data)
                await writer.drain()
            else:
                chunk = AudioChunk(rate=24000, width=2, channels=1, audio=data)
                await async_write_event(chunk.event(), writer)

        async def close_stream() -> None:
            writer.close()

        return send_stream, close_stream
    if transport.startswith("nats"):
        import nats

        from bench.harness import peer_options

        options: dict[str, Any] = {"pending_size": 1} if transport == "nats_small_pending" else {}
        nc = await nats.connect(address, **options, **peer_options())
        topic = nats_topic()

        async def send_nats(data: bytes) -> None:
            await nc.publish(topic, data)

        async def close_nats() -> None:
            await nc.flush()
            await nc.close()

        return send_nats, close_nats
    if transport == "mqtt":
        client = mqtt_client(address)
        client.loop_start()

        async def send_mqtt(data: bytes) -> None:
            client.publish(TOPIC, data, qos=0)

        async def close_mqtt() -> None:
            await asyncio.sleep(0.2)  # let the network thread write the END frame
            client.loop_stop()
            client.disconnect()

        return send_mqtt, close_mqtt
    raise SystemExit(f"unknown transport {transport!r}")


async def publish(transport: str, address: str, mode: str, frames: int) -> None:
    send, close = await publisher(transport, address)
    for n in range(WARMUP_FRAMES):
        await send(frame(n, WARMUP))
        await asyncio.sleep(PACE_S)
    loop = asyncio.get_running_loop()
    start = loop.time() + PACE_S
    seq = 0
    if mode == "paced":
        for n in range(frames):
            await asleep_until(start + n * PACE_S)
            await send(frame(seq, 0))
            seq += 1
    else:
        for n in range(frames // BURST):
            await asleep_until(start + n * BURST_EVERY_S)
            for i in range(BURST):
                await send(frame(seq, LAST_OF_BURST if i == BURST - 1 else 0))
                seq += 1
    await asyncio.sleep(PACE_S)
    await send(frame(seq, END))
    await close()


async def asleep_until(deadline: float) -> None:
    await asyncio.sleep(max(0.0, deadline - asyncio.get_running_loop().time()))


def nodelay(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def subscribe(transport: str, address: str) -> None:
    received = Received()
    if transport in ("tcp", "wyoming"):
        await sub_stream(transport, received)
    elif transport.startswith("nats"):
        await sub_nats(address, received, inline=transport == "nats_inline")
    elif transport == "mqtt":
        await sub_mqtt(address, received)
    else:
        raise SystemExit(f"unknown transport {transport!r}")
    print(json.dumps({"samples": received.samples, "complete": received.done.is_set()}), flush=True)


def main(argv: list[str]) -> None:
    role, transport, address, *rest = argv
    if role == "sub":
        asyncio.run(subscribe(transport, address))
    else:
        mode, frames = rest
        asyncio.run(publish(transport, address, mode, int(frames)))


if __name__ == "__main__":
    main(sys.argv[1:])
