"""What reaches a holder on focus.notify.<holder>, over a real nats-server:
the terminal NONE after a slow patience hook, and an answer to every
malformed notification."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from nats.aio.client import Client

from huxley_focus.service import FocusService
from huxley_runtime.focus_client import FocusClient
from huxley_wire.messages.focus import Channel
from huxley_wire.subjects import Subjects
from support.focus_peers import RecordingHandler

HOOK_S = 4.0  # longer than focus waits for the hook (2.5 s)


async def test_a_slow_patience_hook_still_hears_its_terminal_none(
    nc: Client, site: str, focus: FocusService
) -> None:
    """The holder's client waits for its hook longer than focus does: focus
    gives up on the hook's ack, but the NONE still reaches the holder — the
    real one (seq, reason patience_expired), once, after the hook."""

    async def slow_hook(activity_id: str) -> None:
        await asyncio.sleep(HOOK_S)

    handler = RecordingHandler(on_patience=slow_hook)
    client = FocusClient(nc, Subjects(site), "host", handler, patience_hook_timeout_s=HOOK_S + 1)
    caller = FocusClient(nc, Subjects(site), "caller", RecordingHandler())
    await client.start()
    await caller.start()
    try:
        book = await client.acquire(Channel.CONTENT, "audiobooks", patience_ms=200)
        await caller.acquire(Channel.COMMS, "calls")
        none = await handler.wait_state(book.activity_id, "none", timeout=20)
        assert none.seq > 0 and none.reason is not None and none.reason.value == "patience_expired"
        kinds = [i[0] for i in handler.log.items if i[0] != "focus" or i[1].activity_id == book.activity_id]
        assert kinds == ["focus", "focus", "patience", "patience_done", "focus"]
        # Focus redelivered the NONE it gave up on; the client hands it over once.
        await client.snapshot()
        assert [c for c in handler.changes(book.activity_id) if c[0] == "none"] == [("none", "patience_expired")]
    finally:
        await caller.stop()
        await client.stop()
