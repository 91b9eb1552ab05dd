"""Who may open the gateway: the access rules as a table (pure), then the real
gateway (uvicorn) with real clients (websockets, httpx): a foreign Origin is
refused with 403 before the upgrade; a client on another address of this
machine needs the pairing code (cookie or ?token=), and with it works."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import httpx
import pytest
import websockets
from structlog.testing import capture_logs

from huxley_audio_io import access, pairing
from huxley_audio_io.service import AudioService
from huxley_audio_io.settings import AudioSettings
from support.services import running

CODE = "ABCD-EFGH-JKLM"
LISTED = access.normalize_origins(["https://home.example"])


@pytest.mark.parametrize(
    ("peer", "host", "origin", "token", "allowed", "reason"),
    [
        ("127.0.0.1", "127.0.0.1:8765", None, None, True, "loopback"),  # a script on this machine
        ("::1", "localhost:8765", "http://localhost:8765", None, True, "loopback"),  # the page itself
        ("::ffff:127.0.0.1", "[::1]:8765", None, None, True, "loopback"),
        ("127.0.0.1", "127.0.0.1:8765", "https://evil.example", None, False, "origin_not_allowed"),
        ("127.0.0.1", "127.0.0.1:8765", "http://127.0.0.1:9999", None, False, "origin_not_allowed"),
        ("127.0.0.1", "127.0.0.1:8765", "null", None, False, "origin_malformed"),
        ("127.0.0.1", "127.0.0.1:8765", "https://evil.example", CODE, False, "origin_not_allowed"),
        ("127.0.0.1", "127.0.0.1:8765", "https://home.example", None, True, "loopback"),  # listed
        # DNS rebinding: the attacker's name pointed at 127.0.0.1; Origin matches Host.
        ("127.0.0.1", "evil.example:8765", "http://evil.example:8765", None, False, "token_required"),
        ("192.168.1.20", "192.168.1.5:8765", None, None, False, "token_required"),  # an ESP32, no code
        ("192.168.1.20", "192.168.1.5:8765", None, "WRONG-CODE-0000", False, "token_wrong"),
        ("192.168.1.20", "192.168.1.5:8765", None, "abcd efgh jklm", True, "token"),  # as typed
        ("192.168.1.20", "huxley.lan", "http://huxley.lan", CODE, True, "token"),  # the page, paired
        ("192.168.1.20", "huxley.lan", "http://huxley.lan", None, False, "token_required"),
        ("192.168.1.20", "huxley.lan", "https://huxley.lan", CODE, False, "origin_not_allowed"),
    ],
)
def test_the_access_rules(peer, host, origin, token, allowed, reason):
    verdict = access.judge(access.Caller(peer, host, origin, token), LISTED, CODE)
    assert (verdict.allowed, verdict.reason) == (allowed, reason)


def test_no_code_made_means_no_stranger_gets_in():
    verdict = access.judge(access.Caller("192.168.1.20", "h:1", None, ""), frozenset(), None)
    assert not verdict.allowed


def test_the_pairing_code_is_made_once_and_private(tmp_path: Path):
    code = pairing.ensure_code(tmp_path)
    path = pairing.code_path(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert pairing.ensure_code(tmp_path) == code == pairing.read_code(tmp_path)
    assert pairing.ensure_code(tmp_path, renew=True) != code
    assert len(code.replace("-", "")) == 12 and set(code) <= set(pairing.ALPHABET + "-")


def own_address() -> str:
    """A non-loopback IPv4 address of this machine (traffic to it stays here)."""
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=False).stdout
    for address in out.split():
        if ":" not in address and not access.is_loopback_address(address):
            return address
    pytest.skip("this machine has no non-loopback IPv4 address")


async def refused_status(url: str, **kwargs: object) -> int:
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(url, **kwargs):  # type: ignore[arg-type]
            pass
    return refused.value.response.status_code


async def hello(url: str, **kwargs: object) -> dict[str, object]:
    async with websockets.connect(url, **kwargs) as ws:  # type: ignore[arg-type]
        return json.loads(await ws.recv())


async def test_a_foreign_origin_is_refused_before_the_upgrade(audio_settings: AudioSettings):
    settings = audio_settings.model_copy(update={"web_allowed_origins": ["https://home.example:443"]})
    async with running(AudioService, settings) as gateway:
        port = gateway.backend.port
        url = f"ws://127.0.0.1:{port}/ws"
        with capture_logs() as logs:
            assert await refused_status(url, origin="https://evil.example") == 403
            assert await refused_status(url, origin=f"http://127.0.0.1:{port + 1}") == 403
        assert [e["reason"] for e in logs if e["event"] == "client_refused"] == ["origin_not_allowed"] * 2
        assert not gateway.backend.client_connected
        # The page it served, a listed origin, and a device without an Origin are let in.
        assert (await hello(url, origin=f"http://127.0.0.1:{port}"))["type"] == "hello"
        assert (await hello(url, origin="https://home.example"))["type"] == "hello"
        assert (await hello(url))["type"] == "hello"
        assert gateway.backend.detail()["denied"] == 2


async def test_beyond_loopback_the_pairing_code_is_needed(audio_settings: AudioSettings):
    address = own_address()
    settings = audio_settings.model_copy(update={"web_host": address})
    async with running(AudioService, settings) as gateway:
        code = pairing.read_code(settings.data_dir)
        assert code is not None  # made at start, since the gateway listens beyond loopback
        base = f"{address}:{gateway.backend.port}"
        # A device (no Origin): refused without the code or with a wrong one; served with it.
        assert await refused_status(f"ws://{base}/ws") == 403
        assert await refused_status(f"ws://{base}/ws?token=AAAA-BBBB-CCCC") == 403
        assert (await hello(f"ws://{base}/?token={code}"))["type"] == "hello"

        # The page: without the cookie, the pairing form; the right code sets the cookie.
        async with httpx.AsyncClient(base_url=f"http://{base}") as http:
            form = await http.get("/")
            assert form.status_code == 401 and 'action="/pair"' in form.text
            wrong = await http.post("/pair", data={"code": "AAAA-BBBB-CCCC"})
            assert wrong.status_code == 403 and access.COOKIE not in wrong.cookies
            paired = await http.post("/pair", data={"code": code.lower()})
            assert paired.status_code == 303 and paired.headers["location"] == "/"
            cookie = paired.headers["set-cookie"]
            assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
            page = await http.get("/")
            assert page.status_code == 200 and 'id="talk"' in page.text
            # A pairing link works the same way and leaves the code out of the address.
        async with httpx.AsyncClient(base_url=f"http://{base}") as http:
            link = await http.get(f"/?token={code}&lang=es")
            assert link.status_code == 303 and link.headers["location"] == "/?lang=es"
            assert http.cookies.get(access.COOKIE) == code
        # The page's WebSocket carries the cookie and its own Origin.
        headers = {"Cookie": f"{access.COOKIE}={code}"}
        assert (await hello(f"ws://{base}/ws", origin=f"http://{base}", additional_headers=headers))[
            "type"
        ] == "hello"
        assert await refused_status(f"ws://{base}/ws", origin=f"http://{base}") == 403


async def test_a_renewed_code_takes_effect_without_a_restart(audio_settings: AudioSettings):
    address = own_address()
    settings = audio_settings.model_copy(update={"web_host": address})
    async with running(AudioService, settings) as gateway:
        old = pairing.read_code(settings.data_dir)
        new = pairing.ensure_code(settings.data_dir, renew=True)
        base = f"ws://{address}:{gateway.backend.port}/ws"
        assert await refused_status(f"{base}?token={old}") == 403
        assert (await hello(f"{base}?token={new}"))["type"] == "hello"


def test_loopback_is_the_default():
    assert AudioSettings.model_fields["web_host"].default == "127.0.0.1"


def test_the_up_banner_says_what_the_gateway_really_binds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("HUXLEY_WEB_HOST", raising=False)
    monkeypatch.setenv("HUXLEY_WEB_PORT", "9876")
    assert pairing.gateway_lines(tmp_path) == ["web client : http://127.0.0.1:9876/  (this machine only)"]
    assert pairing.read_code(tmp_path) is None  # loopback only: no code needed, none made
    monkeypatch.setenv("HUXLEY_WEB_HOST", "0.0.0.0")
    web, pair = pairing.gateway_lines(tmp_path)
    assert "listening on 0.0.0.0:9876" in web
    code = pairing.read_code(tmp_path)
    assert code is not None and code in pair
