"""The gateway's access rules in real headless Chromium: the page it serves
connects; a page of another origin (a tiny server on another port) cannot
open the WebSocket; on another address of this machine the page needs the
pairing code, which a pairing link keeps in a cookie, and then connects."""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import async_playwright
from structlog.testing import capture_logs

from audio.test_browser import fake_mic
from audio.test_gateway_access import own_address
from huxley_audio_io import pairing
from huxley_audio_io.service import AudioService
from huxley_audio_io.settings import AudioSettings
from support.browser import launch_chromium
from support.services import running
from support.waiting import until

pytestmark = pytest.mark.browser

FOREIGN_PAGE = """<!doctype html><title>elsewhere</title><body data-ws="trying"><script>
const ws = new WebSocket("ws://127.0.0.1:%d/ws");
ws.onopen = () => { document.body.dataset.ws = "open"; };
ws.onclose = () => { if (document.body.dataset.ws !== "open") document.body.dataset.ws = "refused"; };
</script></body>"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def foreign_site(root: Path) -> Iterator[int]:
    """Another origin: a plain HTTP server on another port of this machine."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


async def test_the_page_connects_and_a_foreign_page_cannot(gateway: AudioService, tmp_path: Path):
    port = gateway.backend.port  # type: ignore[attr-defined]
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(FOREIGN_PAGE % port)
    async with async_playwright() as pw:
        browser = await launch_chromium(pw, fake_mic(tmp_path / "mic.wav"))
        try:
            page = await browser.new_page()
            await page.goto(f"http://127.0.0.1:{port}/")
            await page.wait_for_selector("body[data-conn=connected]")
            await page.close()
            await until(lambda: not gateway.backend.client_connected, what="the page's client gone")

            with foreign_site(site) as other, capture_logs() as logs:
                evil = await browser.new_page()
                await evil.goto(f"http://127.0.0.1:{other}/")
                await evil.wait_for_selector("body[data-ws=refused]", state="attached")
            refusals = [e for e in logs if e["event"] == "client_refused"]
            assert refusals and refusals[0]["reason"] == "origin_not_allowed"
            assert refusals[0]["origin"] == f"http://127.0.0.1:{other}"
            assert not gateway.backend.client_connected
        finally:
            await browser.close()


async def test_on_the_lan_the_page_pairs_and_connects(audio_settings: AudioSettings, tmp_path: Path):
    address = own_address()
    settings = audio_settings.model_copy(update={"web_host": address})
    async with running(AudioService, settings) as gateway, async_playwright() as pw:
        base = f"http://{address}:{gateway.backend.port}"
        code = pairing.read_code(settings.data_dir)
        browser = await launch_chromium(pw, fake_mic(tmp_path / "mic.wav"))
        try:
            page = await browser.new_page()
            await page.goto(f"{base}/")
            await page.wait_for_selector("#pair-code")  # no code yet: the pairing form
            await page.fill("#pair-code", "AAAA-BBBB-CCCC")
            await page.click("button[type=submit]")
            assert "not right" in await page.inner_text("#pair-message")

            await page.goto(f"{base}/?token={code}")
            await page.wait_for_selector("body[data-conn=connected]")
            assert page.url == f"{base}/"  # the code left the address bar
            cookies = await page.context.cookies()
            assert [(c["name"], c["httpOnly"], c["sameSite"]) for c in cookies] == [
                ("huxley_pairing", True, "Strict")
            ]
            assert await page.evaluate("document.cookie") == ""  # no script can read it
            assert gateway.backend.client_connected
        finally:
            await browser.close()
