"""The shared baseline: a NATS request/reply whose responder does no work."""

from __future__ import annotations

from bench.harness import BASELINE_REQUEST_REPLY, BenchEnv, Measurement, echo_here, latency, time_many


async def run(env: BenchEnv) -> list[Measurement]:
    site = env.site()
    client = await env.connect(site)
    async with echo_here(env, site, "baseline") as subject:
        samples = await time_many(lambda: client.request(subject, b'{"v":1}', timeout=2), 2000)
    await client.close()
    return [latency(BASELINE_REQUEST_REPLY, samples, note="bare NATS request/reply, no work")]
