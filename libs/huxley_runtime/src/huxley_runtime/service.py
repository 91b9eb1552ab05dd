"""The base every service is built on.

A service connects to NATS, registers as a NATS micro service named
`huxley-<name>` (so `nats micro ls/info/stats` list it with its endpoints),
answers `huxley.<site>.health.<name>`, serves its request subjects through one
dispatcher, and stops cleanly on SIGTERM or SIGINT.

The dispatcher is where "bad input never crashes a service" lives: every
payload is decoded and validated against the subject's request table, and any
failure — malformed JSON, a wrong schema version, an unknown op, a handler that
raises or runs past its time limit — becomes the error envelope.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from nats import micro
from nats.aio.client import Client
from nats.micro.request import Request as MicroRequest
from pydantic import BaseModel

from huxley_runtime.bus import connect, settle
from huxley_runtime.logging import bound, configure_logging, debug_enabled, get_logger
from huxley_runtime.settings import HuxleySettings
from huxley_runtime.signals import stop_on_signals
from huxley_wire.codec import MAX_CONTROL_BYTES, OK, OK_BYTES, RequestTable, encode, encode_obj
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages.common import Health
from huxley_wire.subjects import Subjects

VERSION = "0.1.0"

Handler = Callable[[Any, str], Awaitable[BaseModel]]


@dataclass(frozen=True)
class Endpoint:
    """One request subject and the operations served on it.

    `handlers` maps each request model to `async handler(request, subject)`.
    Endpoints are serial by default (one request at a time, in arrival
    order); `concurrent=True` starts each request without waiting for the
    ones before it. Either way each request runs as a task of its own,
    which a stop lets finish.
    """

    name: str
    subject: str
    handlers: Mapping[Any, Handler]  # request model class -> handler
    concurrent: bool = False
    queue_group: str | None = None
    max_bytes: int = MAX_CONTROL_BYTES
    timeout_s: float | None = None


class Service:
    name: ClassVar[str]
    description: ClassVar[str] = ""
    settings_class: ClassVar[type[HuxleySettings]] = HuxleySettings

    def __init__(self, settings: HuxleySettings | None = None) -> None:
        self.settings = settings or self.settings_class()
        self.subjects = Subjects(self.settings.site)
        self.instance = self.settings.instance_id(self.name)
        self.log = get_logger(instance=self.instance)
        self._nc: Client | None = None
        self._micro: Any = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._serving: set[asyncio.Task[Any]] = set()  # requests being answered
        self._started_at = time.monotonic()
        self.stopping = asyncio.Event()
        self.ready = asyncio.Event()

    # -- what subclasses provide -------------------------------------------------
    async def on_start(self) -> None:
        """Open resources; called after the bus connection, before endpoints."""

    async def on_stop(self) -> None:
        """Close resources; called after endpoints stopped taking requests."""

    def endpoints(self) -> list[Endpoint]:
        return []

    def health(self) -> tuple[str, dict[str, Any]]:
        """(status, detail) for the health reply; status is ok, degraded or starting."""
        return "ok", {}

    def health_sites(self) -> list[str]:
        """The sites it answers health at: its own, or every room it serves
        (storage serves the whole home)."""
        return [self.settings.site]

    # -- plumbing --------------------------------------------------------------------
    @property
    def nc(self) -> Client:
        if self._nc is None:
            raise RuntimeError(f"{self.name}: not connected yet")
        return self._nc

    def spawn(
        self, coro: Coroutine[Any, Any, Any], name: str | None = None, *, eager: bool = False
    ) -> asyncio.Task[Any]:
        """A task the service keeps a reference to, logs if it fails and
        cancels at stop. An `eager` one runs at once, up to its first wait
        (and to its end if it never waits), instead of at the loop's next turn."""
        if eager:
            loop = asyncio.get_running_loop()  # Python 3.13.0 needs it passed for eager_start
            task: asyncio.Task[Any] = asyncio.Task(coro, loop=loop, name=name, eager_start=True)
        else:
            task = asyncio.create_task(coro, name=name)
        if task.done():
            self._done(task)
            return task
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.error("task_failed", task=task.get_name(), error=repr(task.exception()))

    async def start(self) -> None:
        self._nc = await connect(self.settings, self.instance)
        await self.on_start()
        sites = self.health_sites()
        metadata = {"site": self.settings.site, "instance": self.instance, "service": self.name}
        if sites != [self.settings.site]:
            metadata["sites"] = ",".join(sites)  # `huxley status` lists it under each
        self._micro = await micro.add_service(
            self._nc,
            name=f"huxley-{self.name}",
            version=VERSION,
            description=self.description or f"huxley {self.name}",
            metadata=metadata,
        )
        # A queue group of its own per instance: every instance answers, so
        # `huxley status` can gather them all.
        for site in sites:
            await self._micro.add_endpoint(
                name="health" if site == self.settings.site else f"health-{site}",
                subject=Subjects(site).health(self.name),
                handler=self._answer_health,
                queue_group=self.instance,
            )
        for endpoint in self.endpoints():
            await self._add_endpoint(endpoint)
        await settle(self._nc)
        self.ready.set()
        self.log.info("service_started", nats=self.settings.nats_url)

    async def serve(self, endpoint: Endpoint) -> None:
        """Add an endpoint after start (e.g. a skill's tools once it is set up);
        it is live on the server when this returns."""
        await self._add_endpoint(endpoint)
        await settle(self.nc)

    async def unserve(self, name: str) -> bool:
        """Stop answering on an endpoint added with `serve` (a skill turned
        off); False if there is none by that name. nats-py's micro has no
        public way to remove an endpoint, so this reaches into its list."""
        endpoints: list[Any] = getattr(self._micro, "_endpoints", None) or []
        for endpoint in list(endpoints):
            if getattr(endpoint, "_name", None) == name:
                await endpoint._stop()
                endpoints.remove(endpoint)
                await settle(self.nc)
                return True
        return False

    async def _add_endpoint(self, endpoint: Endpoint) -> None:
        if self._micro is None:
            raise RuntimeError(f"{self.name}: not started")
        await self._micro.add_endpoint(
            name=endpoint.name,
            subject=endpoint.subject,
            handler=self._dispatcher(endpoint),
            queue_group=endpoint.queue_group or f"huxley-{self.name}",
        )

    async def stop(self) -> None:
        if self._micro is not None:
            await self._stop_taking_requests()
            self._micro = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await self.on_stop()
        finally:
            if self._nc is not None and not self._nc.is_closed:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._nc.drain(), 5)
            self.log.info("service_stopped")

    async def _stop_taking_requests(self) -> None:
        """No new request, and each one already sent to us answered, within
        `stop_grace_s`: a restart (SIGTERM) must not leave a caller waiting out
        its timeout for a write that committed anyway. The endpoints are
        drained (the server stops sending; what it sent is taken), then the
        requests being served finish. One still running after the grace is
        cut without a reply, as a crash would (its caller times out)."""
        endpoints: list[Any] = getattr(self._micro, "_endpoints", None) or []
        subscriptions = [e._subscription for e in endpoints if getattr(e, "_subscription", None)]
        endpoints.clear()  # drained here: micro's stop then ends only its discovery subjects
        grace = self.settings.stop_grace_s
        try:
            async with asyncio.timeout(grace):
                await asyncio.gather(*(sub.drain() for sub in subscriptions), return_exceptions=True)
                if self._serving:
                    await asyncio.wait(set(self._serving))
        except TimeoutError:
            if self._serving:
                self.log.warning("requests_cut_at_stop", count=len(self._serving), grace_s=grace)
        with contextlib.suppress(Exception):
            await self._micro.stop()

    async def run(self) -> None:
        """Start, serve until SIGTERM/SIGINT, stop."""
        stop_on_signals(self.stopping.set)
        start = asyncio.create_task(self.start())
        stop_wait = asyncio.create_task(self.stopping.wait())
        await asyncio.wait({start, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        if not start.done():
            start.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await start
        elif start.exception() is not None:
            stop_wait.cancel()
            raise start.exception()  # type: ignore[misc]
        await stop_wait
        await self.stop()

    async def _answer_health(self, req: MicroRequest) -> None:
        status, detail = ("starting", {}) if not self.ready.is_set() else self.health()
        reply = Health(
            service=self.name,
            instance=self.instance,
            site=self.settings.site,
            status=status,  # type: ignore[arg-type]
            version=VERSION,
            uptime_s=round(time.monotonic() - self._started_at, 3),
            detail=detail,
        )
        await _respond(req, encode(reply))

    def _dispatcher(self, endpoint: Endpoint) -> Callable[[MicroRequest], Awaitable[None]]:
        table = RequestTable(endpoint.handlers)

        async def handle(req: MicroRequest) -> None:
            # The per-request debug line costs even when filtered out: only
            # time the request when it will be written.
            started = time.perf_counter() if debug_enabled() else None
            op: str | None = None
            try:
                request = table.decode(req.data, endpoint.max_bytes)
                op = request.op
                handler = endpoint.handlers[type(request)]
                with bound(op=op):
                    work = handler(request, req.subject)
                    if endpoint.timeout_s is not None:
                        reply = await asyncio.wait_for(work, endpoint.timeout_s)
                    else:
                        reply = await work
                expected = type(request).reply_model
                if not isinstance(reply, expected):
                    raise TypeError(f"{op} handler returned {type(reply).__name__}, not {expected.__name__}")
                data = OK_BYTES if reply is OK else encode(reply)
            except WireError as exc:
                self.log.warning(
                    "request_refused", subject=req.subject, op=op, code=str(exc.code), error=exc.message
                )
                data = encode_obj(exc.envelope())
            except TimeoutError:
                message = f"{op} did not finish within {endpoint.timeout_s:g} s"
                self.log.error("request_timeout", subject=req.subject, op=op)
                data = encode_obj(WireError(ErrorCode.TIMEOUT, message).envelope())
            except Exception as exc:
                self.log.exception("request_failed", subject=req.subject, op=op)
                data = encode_obj(WireError(ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}").envelope())
            await _respond(req, data)
            if started is not None:
                ms = round((time.perf_counter() - started) * 1e3, 2)
                self.log.debug("request_done", subject=req.subject, op=op, ms=ms)

        task_name = f"{endpoint.name}-request"

        def serve(req: MicroRequest) -> asyncio.Task[Any]:
            # Eager: a request answered without waiting (a cached read) is
            # answered now, not one loop turn later. A task of its own, so
            # a stop lets it finish (see _stop_taking_requests).
            task = self.spawn(handle(req), name=task_name, eager=True)
            if not task.done():
                self._serving.add(task)
                task.add_done_callback(self._serving.discard)
            return task

        async def handle_in_task(req: MicroRequest) -> None:
            serve(req)

        async def handle_in_turn(req: MicroRequest) -> None:
            # One at a time, in arrival order: the subscription waits for each.
            # Shielded: an unsubscribe (unserve) cancels this wait, not the request.
            await asyncio.shield(serve(req))

        return handle_in_task if endpoint.concurrent else handle_in_turn


async def _respond(req: MicroRequest, data: bytes) -> None:
    try:
        await req.respond(data)
    except ValueError:
        pass  # published without a reply subject: nobody to answer


def run_service(service_class: type[Service]) -> None:
    """The `__main__` of every service."""
    settings = service_class.settings_class()
    configure_logging(service_class.name, settings.site, json=settings.log_json, level=settings.log_level)
    try:
        asyncio.run(service_class(settings).run())
    except KeyboardInterrupt:
        pass
