"""The shared baseline: a NATS request/reply whose responder does no work."""

from __future__ import annotations

import nats

from bench.harness import BASELINE_REQUEST_REPLY, BenchEnv, Measurement, latency, time_many


async def run(env: BenchEnv) -> list[Measurement]:
    site = env.site()
    responder = await env.connect(site)
    client = await env.connect(site)
    subject = f"huxley.{site}.bench.echo"

    async def echo(msg: nats.aio.msg.Msg) -> None:
        await msg.respond(msg.data)

    await responder.subscribe(subject, cb=echo)
    await responder.flush()
    await responder.flush()
    samples = await time_many(lambda: client.request(subject, b'{"v":1}', timeout=2), 2000)
    await client.close()
    await responder.close()
    return [latency(BASELINE_REQUEST_REPLY, samples, note="bare NATS request/reply, no work")]
