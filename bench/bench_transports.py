"""Bare transports side by side, in the same run: the one-way latency of a
20 ms frame (960 B PCM) from a publisher process to a subscriber process,
paced at 50 frames/s and in bursts of five back-to-back frames (the last
frame of each burst is reported, the one that waits for the other four),
in interleaved rounds so every transport sees the same moments of the
machine.

Raw TCP is the floor; Wyoming (its event framing over TCP, no broker), MQTT
through a local mosquitto (started here on a spare port when it is
installed) and bare NATS (nats-py with its default 2 MiB pending buffer, and
with a pending buffer smaller than a frame) are reported against it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.harness import BenchEnv, Measurement, in_rounds, latency, peer_env

REPO = Path(__file__).resolve().parents[1]
# 500 paced frames (10 s) and 200 bursts of five (20 s) per transport, in
# ROUNDS interleaved rounds: the p99 of 50 bursts was their slowest but one,
# too few to rank transports by.
ROUNDS = 4
PACED_FRAMES = 500 // ROUNDS
BURST_FRAMES = 1000 // ROUNDS
TRANSPORTS = ("tcp", "wyoming", "mqtt", "nats", "nats_small_pending", "nats_inline")
NOTES = {
    "tcp": "raw TCP, length-prefixed frames, TCP_NODELAY: the floor",
    "wyoming": "wyoming 1.10.2 async_write_event/async_read_event over TCP, no broker",
    "mqtt": "paho-mqtt through a local mosquitto, QoS 0, TCP_NODELAY on both hops",
    "nats": "nats-py publish/subscribe through the run's nats-server, default pending_size (2 MiB)",
    "nats_small_pending": "nats-py with pending_size=1: every publish goes to the socket at once",
    "nats_inline": "nats-py, defaults; the subscriber takes each frame in the client's reader "
    "(huxley_runtime.inline_sub, as audio-io and the bridge do; paho's thread does the same for MQTT)",
}


def spare_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def mosquitto() -> Iterator[str | None]:
    """A mosquitto on a spare loopback port: its host:port, or None if it is not installed."""
    binary = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if binary is None:
        yield None
        return
    port = spare_port()
    with tempfile.TemporaryDirectory(prefix="huxley-mqtt-") as tmp:
        conf = Path(tmp) / "mosquitto.conf"
        conf.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nset_tcp_nodelay true\n"
        )
        proc = subprocess.Popen(
            [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mosquitto did not start on port {port}")
                time.sleep(0.05)
            yield f"127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(5)


async def peer(environment: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.transport_peers",
        *args,
        cwd=REPO,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
    )


async def measure(
    environment: dict[str, str], transport: str, address: str, mode: str, frames: int | None = None
) -> list[float]:
    """One window's reported latencies (ms): every frame paced, the last of each burst."""
    sub = await peer(environment, "sub", transport, address)
    assert sub.stdout is not None
    try:
        ready = (await asyncio.wait_for(sub.stdout.readline(), 30)).decode().split()
        if not ready or ready[0] != "ready":
            raise RuntimeError(f"{transport} subscriber did not start")
        target = ready[1] if transport in ("tcp", "wyoming") else address
        frames = frames or (PACED_FRAMES if mode == "paced" else BURST_FRAMES)
        pub = await peer(environment, "pub", transport, target, mode, str(frames))
        await asyncio.wait_for(pub.wait(), 120)
        result = json.loads(await asyncio.wait_for(sub.stdout.readline(), 60))
    finally:
        if sub.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                sub.kill()
        await sub.wait()
    if not result["complete"]:
        raise RuntimeError(
            f"{transport} {mode}: the subscriber never saw the end ({len(result['samples'])} frames)"
        )
    return [float(ms) for ms, last in result["samples"] if mode == "paced" or last]


async def run(env: BenchEnv) -> list[Measurement]:
    environment = peer_env(env, env.site())  # the NATS peers connect as the harness
    pooled: dict[tuple[str, str], list[float]] = {}
    with mosquitto() as mqtt_address:
        if mqtt_address is None:
            print("   mosquitto is not installed: no MQTT figures (scripts/setup-system.sh installs it)")
        transports = [t for t in TRANSPORTS if t != "mqtt" or mqtt_address is not None]
        # In rounds, each transport a share of its frames per round: a slow spell
        # falls on all of them, not on the one whose turn it was.
        for transport in in_rounds(transports, ROUNDS):
            address = {"mqtt": mqtt_address or "", "tcp": "", "wyoming": ""}.get(transport, env.nats_url)
            for mode in ("paced", "burst"):
                samples = await measure(environment, transport, address, mode)
                pooled.setdefault((transport, mode), []).extend(samples)
    results: list[Measurement] = []
    for transport in TRANSPORTS:
        for mode in ("paced", "burst"):
            if (transport, mode) not in pooled:
                continue
            kind = "paced" if mode == "paced" else "burst_last"
            what = "50 frames/s" if mode == "paced" else "last frame of each burst of 5"
            results.append(
                latency(
                    f"transport.{transport}.{kind}",
                    pooled[(transport, mode)],
                    baseline=None if transport == "tcp" else f"transport.tcp.{kind}",
                    note=f"{NOTES[transport]}; {what}; publisher and subscriber in separate processes; "
                    f"{ROUNDS} interleaved rounds",
                )
            )
    return results
