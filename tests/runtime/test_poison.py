"""A real service over a real nats-server against the payloads that broke
services in the chaos run: each class answers the error envelope with its code
(never `internal`, never silence), never reaches a handler, and the service
serves a valid request — and publishes its events — afterwards.

The service here keeps what it was sent and publishes it with every later
event, as the bridge did with an inject id: a lone surrogate that reached the
handler used to make every later publish fail."""

import json

import pytest

from huxley_runtime.rpc import request
from huxley_runtime.service import Endpoint, Service
from huxley_wire.codec import Message, Request, encode
from support.services import running
from support.waiting import until


class Noted(Message):
    count: int


class Note(Request[Noted]):
    op = "note"
    text: str


class NoteEvent(Message):
    texts: list[str]


class Notebook(Service):
    name = "notebook"

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.texts: list[str] = []

    async def note(self, req: Note, subject: str) -> Noted:
        self.texts.append(req.text)
        await self.nc.publish(f"{self.subjects.prefix}.notebook.events", encode_event(self.texts))
        return Noted(count=len(self.texts))

    def endpoints(self) -> list[Endpoint]:
        return [Endpoint("rpc", f"{self.subjects.prefix}.notebook.rpc", {Note: self.note})]


def encode_event(texts: list[str]) -> bytes:
    return encode(NoteEvent(texts=texts))


def note_with(text_json: str, extra: str = "") -> bytes:
    return f'{{"v":1,"op":"note","text":{text_json}{extra}}}'.encode()


POISON = {
    "deep nesting": (note_with('"a"', ',"x":' + "[" * 5000 + "]" * 5000), "invalid"),
    "deeper than python recurses": (note_with('"a"', ',"x":' + "[" * 100_000), "invalid"),
    "a 5000-digit integer": (note_with('"a"', ',"x":' + "9" * 5000), "invalid"),
    "a 65-digit integer": (note_with('"a"', ',"x":-' + "1" * 65), "invalid"),
    "a lone surrogate": (note_with('"\\ud800"'), "bad_encoding"),
    "a lone low surrogate in a key": (note_with('"a"', ',"\\udc00":1'), "bad_encoding"),
    "v true": (b'{"v":true,"op":"note","text":"a"}', "bad_version"),
    "v 1.0": (b'{"v":1.0,"op":"note","text":"a"}', "bad_version"),
    'v "1"': (b'{"v":"1","op":"note","text":"a"}', "bad_version"),
    "invalid utf-8": (b'{"v":1,"op":"note","text":"\xc3\x28"}', "bad_encoding"),
}


async def test_every_poison_class_gets_its_envelope_and_the_service_keeps_serving(nc, settings, site):
    subject = f"huxley.{site}.notebook.rpc"
    events: list[dict] = []

    async def collect(msg) -> None:
        events.append(json.loads(msg.data))

    await nc.subscribe(f"huxley.{site}.notebook.events", cb=collect)
    async with running(Notebook, settings) as svc:
        for what, (payload, code) in POISON.items():
            reply = json.loads((await nc.request(subject, payload, timeout=5)).data)
            assert reply.get("error", {}).get("code") == code, (what, reply)
            assert len(reply["error"]["message"]) < 1200, what
        assert svc.texts == [], "a refused request reached the handler"

        # Afterwards: a valid request is served and its event published.
        noted = await request(nc, subject, Note(text="still here"), timeout=5)
        assert noted.count == 1
        await until(lambda: events, what="the event after the poison")
        assert events[-1]["texts"] == ["still here"]


async def test_a_surrogate_that_got_in_otherwise_does_not_break_later_publishes(nc, settings, site):
    # Not from the wire (the decoder refuses those): say, a model transcript.
    events: list[dict] = []

    async def collect(msg) -> None:
        events.append(json.loads(msg.data))

    await nc.subscribe(f"huxley.{site}.notebook.events", cb=collect)
    async with running(Notebook, settings) as svc:
        svc.texts.append("half an emoji \ud83d")
        subject = f"huxley.{site}.notebook.rpc"
        for n in range(2, 4):
            assert (await request(nc, subject, Note(text=f"n{n}"), timeout=5)).count == n
        await until(lambda: len(events) == 2, what="both events")
        assert events[-1]["texts"] == ["half an emoji \ufffd", "n2", "n3"]


@pytest.mark.parametrize("size", [256 * 1024 - 1, 256 * 1024])
async def test_a_request_at_the_size_limit_is_served(nc, settings, site, size):
    head, tail = b'{"v":1,"op":"note","text":"', b'"}'
    payload = head + b"t" * (size - len(head) - len(tail)) + tail
    async with running(Notebook, settings):
        reply = json.loads((await nc.request(f"huxley.{site}.notebook.rpc", payload, timeout=5)).data)
        assert reply == {"v": 1, "count": 1}
