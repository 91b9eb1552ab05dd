"""The WebSocket gateway: remote clients (browsers, reference-protocol devices)
on :8765, plus the browser client page.

Every upgrade is judged before it is accepted (`access.py`): a foreign
Origin, or a caller not on this machine without the pairing code, gets HTTP
403. The page's pairing form (and `/?token=`) keeps the code in an HttpOnly,
SameSite=Strict cookie.

One client at a time: a new connection evicts the older one with close code
1001. Malformed messages are logged and ignored; oversize or odd-length audio
is refused (logged, and a `dev_event refused` tells the client). Outbound
messages go through a per-client queue so a slow client never stalls the
mixer's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import secrets
import socket
from collections import deque
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import uvicorn
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocketDisconnect

from huxley_audio_io import access, pairing
from huxley_audio_io import client_protocol as proto
from huxley_audio_io.backends.base import Backend, Edge
from huxley_audio_io.mixer import Block
from huxley_audio_io.settings import AudioSettings
from huxley_runtime.logging import get_logger
from huxley_wire.audio import now_us

WEB_ROOT = Path(str(files("huxley_audio_io") / "web"))
EVICTED = 1001  # "going away": replaced by a newer client
OUTBOX_LIMIT = 500  # messages (~10 s of audio) before a stuck client loses some
RETRY_LISTEN_S = 5.0
REFUSED = 1008  # closed before the upgrade: the client sees HTTP 403
COOKIE_MAX_AGE_S = 365 * 24 * 3600
MAX_FORM_BYTES = 4096

log = get_logger(component="gateway")


class _Client:
    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.client_id = f"c-{secrets.token_hex(4)}"
        self.outbox: deque[proto.Out] = deque()
        self._ready = asyncio.Event()
        self.dropped = 0
        self.pump: asyncio.Task[None] | None = None

    def send(self, message: proto.Out) -> None:
        if message.get("type") == "audio_clear":
            # PTT or audio_clear: audio not yet sent is dropped here, so the
            # client goes quiet now rather than after the queued blocks.
            self.outbox = deque(m for m in self.outbox if m.get("type") != "audio")
        if len(self.outbox) >= OUTBOX_LIMIT:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning("client_too_slow", client=self.client_id, dropped=self.dropped)
            return
        self.outbox.append(message)
        self._ready.set()

    async def run_pump(self) -> None:
        with contextlib.suppress(Exception):  # the socket closed under us: the reader notices
            while True:
                if not self.outbox:
                    self._ready.clear()
                    await self._ready.wait()
                    continue
                message = self.outbox.popleft()
                await self.ws.send_text(json.dumps(message, separators=(",", ":")))


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers (the service owns SIGTERM/SIGINT),
    saying when it is up."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.up = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.up.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class WebBackend(Backend):
    name = "web"
    applies_volume = False  # the client applies set_volume to what it plays

    def __init__(self, settings: AudioSettings) -> None:
        self.settings = settings
        self.max_audio_bytes = settings.web_max_audio_bytes
        self.port: int | None = None
        self._edge: Edge | None = None
        self._client: _Client | None = None
        self._server: _Server | None = None
        self._serving: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self.refused = 0
        self.malformed = 0
        self.denied = 0  # upgrades refused by the access check
        self.allowed_origins = frozenset(settings.web_allowed_origins)
        self.lan = not access.is_loopback_host(settings.web_host)
        self.app = self._build_app()

    # -- lifecycle ---------------------------------------------------------------
    async def start(self, edge: Edge) -> None:
        self._edge = edge
        if self.lan:  # beyond loopback, clients need a code: make sure there is one
            pairing.ensure_code(self.settings.data_dir)
        try:
            sock = _bind(self.settings.web_host, self.settings.web_port)
        except OSError as exc:
            self._bind_failed(exc)
            self._listener = asyncio.create_task(self._retry_bind(), name="gateway-listen")
            return
        await self._serve(sock)

    def _bind_failed(self, exc: OSError) -> None:
        host, port = self.settings.web_host, self.settings.web_port
        self.problem = f"cannot listen on {host}:{port}: {exc.strerror or exc}; retrying"
        log.error("gateway_bind_failed", host=host, port=port, error=str(exc))

    async def _retry_bind(self) -> None:
        while True:
            await asyncio.sleep(RETRY_LISTEN_S)
            try:
                sock = _bind(self.settings.web_host, self.settings.web_port)
            except OSError as exc:
                self._bind_failed(exc)
                continue
            await self._serve(sock)
            return

    async def _serve(self, sock: socket.socket) -> None:
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            ws="websockets-sansio",
            ws_max_size=proto.MAX_TEXT_FRAME,
            ws_ping_interval=20,
            lifespan="off",
            log_level="warning",
            access_log=False,
            ssl_certfile=str(self.settings.web_tls_cert) if self.settings.web_tls_cert else None,
            ssl_keyfile=str(self.settings.web_tls_key) if self.settings.web_tls_key else None,
        )
        self._server = _Server(config)
        self._serving = asyncio.create_task(self._server.serve(sockets=[sock]), name="gateway-serve")
        up = asyncio.create_task(self._server.up.wait())
        await asyncio.wait({self._serving, up}, return_when=asyncio.FIRST_COMPLETED)
        up.cancel()
        if self._serving.done():
            self.problem = f"gateway failed to start: {self._serving.exception()!r}"
            log.error("gateway_failed", error=self.problem)
            return
        self.problem = None
        host = sock.getsockname()[0]
        log.info(
            "gateway_listening",
            url=f"{self._scheme}://{f'[{host}]' if ':' in host else host}:{self.port}/",
            beyond_loopback=self.lan,
            pairing_code=str(pairing.code_path(self.settings.data_dir)) if self.lan else None,
        )

    @property
    def _scheme(self) -> str:
        return "https" if self.settings.web_tls_cert else "http"

    async def stop(self) -> None:
        if self._listener is not None and not self._listener.done():
            self._listener.cancel()
        client = self._client
        self._client = None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.ws.close(code=EVICTED, reason="Server shutting down")
            if client.pump is not None:
                client.pump.cancel()
        if self._server is not None and self._serving is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._serving, 5)

    # -- service -> client ---------------------------------------------------------
    def play(self, block: Block) -> None:
        if block.audible and self._client is not None:
            self._client.send(proto.audio(block.pcm))

    def send(self, message: proto.Out) -> None:
        if self._client is not None:
            self._client.send(message)

    @property
    def client_connected(self) -> bool:
        return self._client is not None

    def detail(self) -> dict[str, Any]:
        return {
            "port": self.port,
            "client": self._client.client_id if self._client else None,
            "refused": self.refused,
            "malformed": self.malformed,
            "denied": self.denied,
            "beyond_loopback": self.lan,
        }

    # -- the app -----------------------------------------------------------------
    def _build_app(self) -> FastAPI:
        app = FastAPI(title="huxley audio-io gateway", docs_url=None, redoc_url=None, openapi_url=None)

        @app.get("/", include_in_schema=False)
        async def index(request: Request) -> Response:
            caller = self._caller(request)
            code = pairing.read_code(self.settings.data_dir)
            if "token" in request.query_params:  # a pairing link: keep the code, clean the address
                if not access.token_matches(caller.token, code):
                    return _pair_page("That pairing code is not right.", 403)
                rest = {k: v for k, v in request.query_params.items() if k != "token"}
                return self._paired(f"/?{urlencode(rest)}" if rest else "/")
            if access.judge(caller, frozenset(), code).allowed:
                return FileResponse(WEB_ROOT / "index.html", headers={"Cache-Control": "no-cache"})
            return _pair_page("", 401)

        @app.post("/pair", include_in_schema=False)
        async def pair(request: Request) -> Response:
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_FORM_BYTES:
                    return _pair_page("That is not a pairing code.", 413)
            code = parse_qs(body.decode("utf-8", "replace")).get("code", [""])[0]
            if not access.token_matches(code, pairing.read_code(self.settings.data_dir)):
                log.warning("pairing_refused", remote=_remote(request))
                return _pair_page("That pairing code is not right.", 403)
            log.info("paired", remote=_remote(request))
            return self._paired("/")

        @app.websocket("/")
        async def client_root(ws: WebSocket) -> None:
            await self._session(ws)

        @app.websocket("/ws")
        async def client_ws(ws: WebSocket) -> None:
            await self._session(ws)

        app.mount("/static", StaticFiles(directory=WEB_ROOT), name="static")
        return app

    def _caller(self, conn: HTTPConnection) -> access.Caller:
        token = conn.query_params.get("token") or conn.cookies.get(access.COOKIE)
        return access.Caller(
            peer=conn.client.host if conn.client else "",
            host_header=conn.headers.get("host"),
            origin=conn.headers.get("origin"),
            token=token,
            scheme=self._scheme,
        )

    def _paired(self, location: str) -> Response:
        """Keep the code in the browser (HttpOnly: no script reads it) and go to the page."""
        response = RedirectResponse(location, status_code=303)
        response.set_cookie(
            access.COOKIE,
            pairing.read_code(self.settings.data_dir) or "",
            max_age=COOKIE_MAX_AGE_S,
            httponly=True,
            samesite="strict",
            secure=self._scheme == "https",
        )
        return response

    async def _session(self, ws: WebSocket) -> None:
        edge = self._edge
        if edge is None:
            await ws.close(code=1013, reason="Starting")
            return
        caller = self._caller(ws)
        verdict = access.judge(caller, self.allowed_origins, pairing.read_code(self.settings.data_dir))
        if not verdict.allowed:
            self.denied += 1
            log.warning("client_refused", reason=verdict.reason, remote=_remote(ws), origin=caller.origin)
            await ws.close(code=REFUSED)  # before accept: HTTP 403, the upgrade never happens
            return
        await ws.accept()
        client = _Client(ws)
        language = (ws.query_params.get("lang") or ws.query_params.get("language") or "").strip().lower()
        persona = (ws.query_params.get("persona") or "").strip()
        # Handshake first, so nothing relayed meanwhile can come before hello.
        for message in edge.client_connected(client.client_id, language or None, persona or None):
            client.send(message)
        old, self._client = self._client, client
        client.pump = asyncio.create_task(client.run_pump(), name=f"client-{client.client_id}")
        log.info(
            "client_connected", client=client.client_id, remote=_remote(ws), replaces=old and old.client_id
        )
        if old is not None:
            edge.client_gone(old.client_id, "evicted")
            with contextlib.suppress(Exception):
                await old.ws.close(code=EVICTED, reason="Replaced by new client")
        try:
            await self._read(client, edge)
        finally:
            if client.pump is not None:
                client.pump.cancel()
            if self._client is client:
                self._client = None
                edge.client_gone(client.client_id, "closed")
                log.info("client_disconnected", client=client.client_id)

    async def _read(self, client: _Client, edge: Edge) -> None:
        while True:
            try:
                raw = await client.ws.receive()
            except (WebSocketDisconnect, RuntimeError):
                return
            if raw["type"] == "websocket.disconnect":
                return
            data: str | bytes = raw["text"] if raw.get("text") is not None else raw.get("bytes") or b""
            try:
                message = proto.parse_client_message(data)
                if isinstance(message, proto.MicAudio):
                    edge.mic(proto.decode_audio(message, self.max_audio_bytes), now_us())
                elif isinstance(message, proto.PttStart):
                    edge.ptt_down("web")
                elif isinstance(message, proto.PttStop):
                    edge.ptt_up("web")
                else:
                    await edge.client_message(message)
            except proto.ClientMessageError as exc:
                self._ignored(client, exc)
            except Exception:
                log.exception("client_message_failed", client=client.client_id)

    def _ignored(self, client: _Client, exc: proto.ClientMessageError) -> None:
        if exc.refused:
            self.refused += 1
            log.warning("client_audio_refused", client=client.client_id, reason=exc.reason)
            client.send(proto.dev_event("refused", {"reason": exc.reason}))
        else:
            self.malformed += 1
            log.warning("client_message_malformed", client=client.client_id, reason=exc.reason)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(64)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _remote(conn: HTTPConnection) -> str:
    return f"{conn.client.host}:{conn.client.port}" if conn.client else "?"


def _pair_page(message: str, status: int) -> HTMLResponse:
    page = (WEB_ROOT / "pair.html").read_text().replace("{message}", html.escape(message))
    return HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})
