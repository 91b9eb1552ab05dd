"""A child for the supervisor tests: a real service (it answers health on the
bus) that prints one 70 KB line, then keeps printing 1 KB lines, numbered."""

from __future__ import annotations

import asyncio
import sys

from huxley_runtime.service import Service, run_service

LONG_LINE_BYTES = 70_000
TICKS = 300


class Chatty(Service):
    name = "chatty"

    async def on_start(self) -> None:
        self.spawn(self.chatter(), name="chatter")

    async def chatter(self) -> None:
        # Plain blocking writes, like a logger: a full pipe blocks the loop.
        sys.stdout.write("L" * LONG_LINE_BYTES + "\n")
        sys.stdout.flush()
        for n in range(1, TICKS + 1):
            sys.stdout.write(f"tick {n} " + "." * 1000 + "\n")
            sys.stdout.flush()
            await asyncio.sleep(0)
        sys.stdout.write("all written\n")
        sys.stdout.flush()


if __name__ == "__main__":
    run_service(Chatty)
