"""A bare NATS responder in a process of its own (started with
`bench.harness.echo_peer`): storage's gets and the bridge's procs injects
are answered from other processes, so they are also compared with a
responder that does no work there (the shared baseline's responder shares
the requester's process, which saves a process wake-up per hop).

    python -m bench.echo_peer NATS_URL SUBJECT

It connects as the harness (`bench.harness.peer_env`), prints `ready` once
its subscription is live and answers until killed."""

from __future__ import annotations

import asyncio
import sys

import nats
from nats.aio.msg import Msg

from bench.harness import peer_options


async def main(url: str, subject: str) -> None:
    nc = await nats.connect(url, **peer_options())

    async def echo(msg: Msg) -> None:
        await msg.respond(msg.data)

    await nc.subscribe(subject, cb=echo)
    await nc.flush()
    await nc.flush()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
