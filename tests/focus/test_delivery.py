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
from huxley_wire.messages import focus as m
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
        nones = [c for c in handler.changes(book.activity_id) if c[0] == "none"]
        assert nones == [("none", "patience_expired")]
    finally:
        await caller.stop()
        await client.stop()


def change(activity_id: str, state: str = "foreground") -> dict[str, Any]:
    return m.FocusChange(
        seq=1,
        activity_id=activity_id,
        channel=Channel.CONTENT,
        interface="radio",
        state=state,  # type: ignore[arg-type]
        behavior="primary" if state == "foreground" else "must_stop",  # type: ignore[arg-type]
        gain=1.0 if state == "foreground" else 0.0,
        ramp_ms=0,
    ).model_dump(mode="json") | {"op": "focus"}


def junk() -> list[tuple[str, bytes, set[str]]]:
    """(what, payload, acceptable error codes) for each class of junk."""
    good = change("a-1")
    deep = b'{"v":1,"op":"focus","meta":' + b"[" * 5000 + b"]" * 5000 + b"}"
    huge = b'{"v":1,"op":"focus","seq":' + b"9" * 5000 + b"}"
    return [
        ("empty", b"", {"bad_json"}),
        ("not json", b"{nope", {"bad_json"}),
        ("a list", b"[1,2]", {"bad_json"}),
        ("a string", b'"focus"', {"bad_json"}),
        ("invalid utf-8", b'{"v":1,"op":"\xff\xfe"}', {"bad_encoding", "bad_json"}),
        ("no version", json.dumps({k: v for k, v in good.items() if k != "v"}).encode(), {"bad_version"}),
        ("version 2", json.dumps(good | {"v": 2}).encode(), {"bad_version"}),
        ("version as text", json.dumps(good | {"v": "1"}).encode(), {"bad_version"}),
        ("no op", json.dumps({"v": 1}).encode(), {"unknown_op"}),
        ("unknown op", json.dumps({"v": 1, "op": "acquire"}).encode(), {"unknown_op"}),
        ("op not a string", json.dumps({"v": 1, "op": ["focus"]}).encode(), {"unknown_op"}),
        ("lone surrogate op", b'{"v":1,"op":"\\ud800"}', {"unknown_op", "invalid", "bad_encoding"}),
        ("missing fields", json.dumps({"v": 1, "op": "focus", "activity_id": "a"}).encode(), {"invalid"}),
        ("wrong types", json.dumps(good | {"gain": "loud", "seq": [1]}).encode(), {"invalid"}),
        ("bad state", json.dumps(good | {"state": "sideways"}).encode(), {"invalid"}),
        ("patience without id", json.dumps({"v": 1, "op": "patience_expired"}).encode(), {"invalid"}),
        ("deep nesting", deep, {"bad_json", "invalid", "too_large"}),
        ("huge integer", huge, {"bad_json", "invalid"}),
        ("too large", json.dumps(good | {"interface": "x" * 300_000}).encode(), {"too_large"}),
    ]


async def test_every_malformed_notification_gets_the_error_envelope(
    nc: Client, site: str, focus: FocusService
) -> None:
    """Junk on focus.notify.<holder>: each gets the error envelope, the
    handler hears nothing of it, and the holder goes on."""
    handler = RecordingHandler()
    client = FocusClient(nc, Subjects(site), "host", handler)
    await client.start()
    subject = Subjects(site).focus_notify("host")
    try:
        for what, payload, codes in junk():
            if len(payload) > nc.max_payload:
                continue  # the server refuses it before the holder could answer
            reply = await nc.request(subject, payload, timeout=5)
            body = json.loads(reply.data)
            assert "error" in body, f"{what}: answered {body}"
            assert body["error"]["code"] in codes, f"{what}: {body['error']}"
        assert handler.log.items == []
        # Still serving: a real notification is acked and handed over.
        reply = await nc.request(subject, json.dumps(change("a-2")).encode(), timeout=5)
        assert json.loads(reply.data).get("ok") is True
        await handler.wait_state("a-2", "foreground")
    finally:
        await client.stop(release=False)
