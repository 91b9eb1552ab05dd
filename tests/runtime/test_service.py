"""The service base against a real nats-server: micro registration, health,
and the dispatcher turning every kind of bad input into the error envelope."""

import asyncio
import json

import pytest

from huxley_runtime.rpc import gather_replies, request
from huxley_runtime.service import Endpoint, Service
from huxley_wire.codec import Message, Ok, Request, encode
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages.common import HealthRequest
from support.auth import with_identity
from support.services import running
from support.waiting import until


class Echoed(Message):
    text: str


class Echo(Request[Echoed]):
    op = "echo"
    text: str


class Boom(Request[Ok]):
    op = "boom"


class Hang(Request[Ok]):
    op = "hang"


class Liar(Request[Echoed]):
    """Its handler returns the wrong reply type: a bug the dispatcher reports."""

    op = "liar"


class DemoService(Service):
    name = "demo"

    async def echo(self, req: Echo, subject: str) -> Echoed:
        return Echoed(text=req.text)

    async def boom(self, req: Boom, subject: str) -> Ok:
        raise RuntimeError("kaput")

    async def hang(self, req: Hang, subject: str) -> Ok:
        await asyncio.sleep(3600)
        return Ok()

    async def liar(self, req: Liar, subject: str) -> Ok:
        return Ok()

    def endpoints(self) -> list[Endpoint]:
        subject = f"{self.subjects.prefix}.demo.rpc"
        return [
            Endpoint(
                "rpc",
                subject,
                {Echo: self.echo, Boom: self.boom, Hang: self.hang, Liar: self.liar},
                concurrent=True,
                timeout_s=0.3,
                max_bytes=1024,
            )
        ]


async def raw(nc, subject, payload: bytes) -> dict:
    reply = await nc.request(subject, payload, timeout=2)
    return json.loads(reply.data)


async def test_health_and_micro_discovery(nc, settings, site):
    async with running(DemoService, settings) as svc:
        health = await request(nc, f"huxley.{site}.health.demo", HealthRequest())
        assert health.status == "ok" and health.instance == svc.instance and health.site == site
        pings = [json.loads(r) for r in await gather_replies(nc, "$SRV.PING.huxley-demo", b"")]
        assert any(p["metadata"]["instance"] == svc.instance for p in pings)
        infos = [json.loads(r) for r in await gather_replies(nc, "$SRV.INFO.huxley-demo", b"")]
        mine = next(i for i in infos if i["metadata"]["instance"] == svc.instance)
        assert {e["name"] for e in mine["endpoints"]} == {"health", "rpc"}


async def test_health_accepts_an_empty_payload(nc, settings, site):
    async with running(DemoService, settings):
        reply = await raw(nc, f"huxley.{site}.health.demo", b"")
        assert reply["service"] == "demo"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"not json", "bad_json"),
        (b'{"v": 7, "op": "echo", "text": "x"}', "bad_version"),
        (b'{"v": 1, "op": "nope"}', "unknown_op"),
        (b'{"v": 1, "op": "echo", "text": 3}', "invalid"),
        (b'{"v": 1, "op": "echo", "text": "\xc3\x28"}', "bad_encoding"),
        (b'{"v": 1, "op": "echo", "text": "' + b"x" * 2000 + b'"}', "too_large"),
        (b'{"v": 1, "op": "boom"}', "internal"),
        (b'{"v": 1, "op": "hang"}', "timeout"),
    ],
)
async def test_bad_input_gets_the_envelope_and_the_service_keeps_serving(nc, settings, site, payload, code):
    subject = f"huxley.{site}.demo.rpc"
    async with running(DemoService, settings):
        reply = await raw(nc, subject, payload)
        assert reply["error"]["code"] == code, reply
        assert reply["error"]["message"]
        echoed = await request(nc, subject, Echo(text="still here"))
        assert echoed.text == "still here"


async def test_typed_request_raises_wire_error(nc, settings, site):
    async with running(DemoService, settings):
        with pytest.raises(WireError) as info:
            await request(nc, f"huxley.{site}.demo.rpc", Boom())
        assert info.value.code == ErrorCode.INTERNAL


async def test_no_responders_is_unavailable(nc, site):
    with pytest.raises(WireError) as info:
        await request(nc, f"huxley.{site}.demo.rpc", Echo(text="x"), timeout=0.5)
    assert info.value.code == ErrorCode.UNAVAILABLE


async def test_concurrent_endpoint_is_not_blocked_by_a_hung_request(nc, settings, site):
    subject = f"huxley.{site}.demo.rpc"
    async with running(DemoService, settings):
        hung = asyncio.ensure_future(nc.request(subject, encode(Hang()), timeout=2))
        echoed = await request(nc, subject, Echo(text="fast"))
        assert echoed.text == "fast"
        assert json.loads((await hung).data)["error"]["code"] == "timeout"


async def test_a_handler_returning_the_wrong_reply_type_is_an_internal_error(nc, settings):
    async with running(DemoService, settings) as svc:
        subject = f"{svc.subjects.prefix}.demo.rpc"
        with pytest.raises(WireError) as err:
            await request(nc, subject, Liar())
        assert err.value.code == ErrorCode.INTERNAL
        assert "returned Ok, not Echoed" in err.value.message


def test_a_request_must_name_its_reply_type():
    with pytest.raises(TypeError, match="names no reply type"):

        class Orphan(Request):  # type: ignore[type-arg]
            op = "orphan"


async def test_eager_tasks_run_at_once_and_are_kept_until_done(settings):
    """spawn(eager=True), as the dispatcher uses it for concurrent requests:
    the coroutine runs before spawn returns, up to its first wait; one that
    never waits is done (and not kept); one that fails is logged."""
    svc = DemoService(settings)
    steps: list[str] = []
    gate = asyncio.Event()

    async def waits() -> None:
        steps.append("started")
        await gate.wait()
        steps.append("finished")

    async def fails() -> None:
        raise RuntimeError("kaput")

    task = svc.spawn(waits(), eager=True)
    assert steps == ["started"] and task in svc._tasks
    gate.set()
    await task
    assert steps == ["started", "finished"]
    failed = svc.spawn(fails(), eager=True)
    assert failed.done() and isinstance(failed.exception(), RuntimeError)
    assert failed not in svc._tasks and not svc._tasks


class Held(Request[Echoed]):
    op = "held"
    text: str


class HeldService(DemoService):
    """Its one request waits until the test releases it."""

    def __init__(self, settings, *, concurrent: bool) -> None:
        super().__init__(settings)
        self.concurrent = concurrent
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.cut = False

    async def held(self, req: Held, subject: str) -> Echoed:
        self.entered.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cut = True
            raise
        return Echoed(text=req.text)

    def endpoints(self) -> list[Endpoint]:
        subject = f"{self.subjects.prefix}.demo.rpc"
        return [Endpoint("rpc", subject, {Held: self.held}, concurrent=self.concurrent)]


async def refused(nc, subject: str) -> bool:
    try:
        await request(nc, subject, Held(text="late"), timeout=0.5)
    except WireError as exc:
        return exc.code == ErrorCode.UNAVAILABLE
    return False


@pytest.mark.parametrize("concurrent", [True, False], ids=["concurrent", "serial"])
async def test_a_stop_lets_the_request_being_answered_finish(nc, settings, site, concurrent):
    """A SIGTERM's stop takes no new request but answers the one it is
    serving: its caller gets the reply, not a timeout on work that was done."""
    svc = HeldService(with_identity(settings, "demo"), concurrent=concurrent)
    subject = f"huxley.{site}.demo.rpc"
    await svc.start()
    asked = asyncio.ensure_future(request(nc, subject, Held(text="kept"), timeout=10))
    await asyncio.wait_for(svc.entered.wait(), 5)
    stopping = asyncio.ensure_future(svc.stop())
    await until(lambda: refused(nc, subject), what="new requests refused while stopping")
    # Held, the request keeps the stop waiting (within its 2 s grace), and is not cut.
    finished, _ = await asyncio.wait({stopping, asked}, timeout=1.0)
    assert not finished and not svc.cut
    svc.release.set()
    assert (await asked).text == "kept"
    await stopping
    assert not svc.cut


async def test_a_request_still_running_after_the_grace_is_cut(nc, settings, site):
    short = settings.model_copy(update={"stop_grace_s": 0.2})
    svc = HeldService(with_identity(short, "demo"), concurrent=True)
    await svc.start()
    asked = asyncio.ensure_future(request(nc, f"huxley.{site}.demo.rpc", Held(text="never"), timeout=3))
    await asyncio.wait_for(svc.entered.wait(), 5)
    await svc.stop()  # returns although the handler never would
    assert svc.cut
    with pytest.raises(WireError) as err:
        await asked
    assert err.value.code == ErrorCode.TIMEOUT  # no reply: the outcome is unknown, as after a crash
