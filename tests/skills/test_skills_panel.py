"""The client's skills panel end to end: a real WebSocket client of audio-io,
a real skill-host running the unmodified published system and timers skills,
storage and focus, on a real nats-server. State -> disable (the tool stops
answering) -> enable (it answers again) -> config -> secret (file 0600, never
echoed) -> secret deleted."""

from __future__ import annotations

import json
import stat
from typing import Any

import nats.errors
import pytest
import websockets
from audio.conftest import WebClient, client_url

from huxley_audio_io.service import AudioService
from huxley_audio_io.settings import AudioSettings
from huxley_runtime.settings import HuxleySettings
from huxley_skill_host.service import SkillHostService
from skills.bus import call_tool
from skills.test_published_over_bus import ready
from support.services import running
from support.waiting import until

SECRET = "s3cret-value-never-echoed"


async def panel_state(client: WebClient, where: Any) -> dict[str, Any]:
    """Ask for skills_state until `where(rows by name)` holds (manifests arrive on their own time)."""
    latest: dict[str, Any] = {}

    async def ask() -> bool:
        nonlocal latest
        await client.send({"type": "get_skills_state"})
        latest = {row["name"]: row for row in (await client.next("skills_state"))["skills"]}
        return bool(where(latest))

    await until(ask, timeout=15)
    return latest


async def test_the_skills_panel_flow(nc, site, settings: HuxleySettings, storage, focus, host_settings):
    audio = AudioSettings(**{**dict(settings), "web_port": 0, "audio_backend": "web"}, _env_file=None)  # type: ignore[call-arg]
    async with (
        running(SkillHostService, host_settings("timers,system")) as host,
        running(AudioService, audio) as gateway,
        websockets.connect(client_url(gateway)) as ws,
    ):
        await ready(host, "timers", "system")
        client = WebClient(ws)
        rows = await panel_state(
            client, lambda r: r.get("timers", {}).get("status") == "ok" and "system" in r
        )
        timers = rows["timers"]
        assert timers["enabled"] is True and timers["host"] == host.holder
        assert "set_timer" in timers["tools"] and timers["package"] == "huxley-skill-timers"
        assert {"current_config", "config_schema", "secret_keys_set", "secret_required_keys"} <= set(timers)

        # Off: the tool subject stops answering and the panel says so.
        await client.send({"type": "set_skill_enabled", "skill": "timers", "enabled": False})
        state = await client.next("skills_state")
        off = {r["name"]: r for r in state["skills"]}["timers"]
        assert off["enabled"] is False and off["status"] == "disabled" and off["tools"] == []
        with pytest.raises(nats.errors.NoRespondersError):
            await call_tool(nc, site, "timers", "set_timer", {"seconds": 600, "message": "tea"})

        # On again: a fresh setup, and the tool answers.
        await client.send({"type": "set_skill_enabled", "skill": "timers", "enabled": True})
        await client.next("skills_state")  # its answer (setup may still be running then)
        await panel_state(client, lambda r: r["timers"]["status"] == "ok" and r["timers"]["enabled"])
        assert "output" in await call_tool(
            nc, site, "timers", "set_timer", {"seconds": 600, "message": "tea"}
        )

        # Config: replaced, persisted, and the skill reconfigured with it.
        await client.send(
            {"type": "set_skill_config", "skill": "system", "config": {"timezone": "America/Bogota"}}
        )
        system = {r["name"]: r for r in (await client.next("skills_state"))["skills"]}["system"]
        assert system["current_config"] == {"timezone": "America/Bogota"}
        saved = json.loads((host.data_dir / "skills-admin" / "system.json").read_text())
        assert saved["config"] == {"timezone": "America/Bogota"}

        # A secret: written 0600 for the host, never sent back.
        await ws.send(
            json.dumps({"type": "set_skill_secret", "skill": "system", "key": "api_key", "value": SECRET})
        )
        raw = await ws.recv()
        while json.loads(raw)["type"] != "skills_state":
            raw = await ws.recv()
        assert SECRET not in raw
        system = {r["name"]: r for r in json.loads(raw)["skills"]}["system"]
        assert system["secret_keys_set"] == ["api_key"] and "api_key" not in system["current_config"]
        secrets = host.data_dir / "secrets" / "system.json"
        assert json.loads(secrets.read_text()) == {"api_key": SECRET}
        assert stat.S_IMODE(secrets.stat().st_mode) == 0o600

        await client.send({"type": "delete_skill_secret", "skill": "system", "key": "api_key"})
        system = {r["name"]: r for r in (await client.next("skills_state"))["skills"]}["system"]
        assert system["secret_keys_set"] == []
        assert json.loads(secrets.read_text()) == {}

        # A skill nobody runs: a status, and the state so the panel never hangs.
        await client.send({"type": "set_skill_enabled", "skill": "nope", "enabled": True})
        assert "not served" in (await client.next("status"))["message"]
        await client.next("skills_state")


@pytest.mark.browser
async def test_our_page_lists_the_skills_and_turns_one_off_and_on(
    nc, site, settings: HuxleySettings, storage, focus, host_settings, tmp_path
):
    from audio.test_browser import fake_mic
    from playwright.async_api import async_playwright

    from support.browser import launch_chromium

    audio = AudioSettings(**{**dict(settings), "web_port": 0, "audio_backend": "web"}, _env_file=None)  # type: ignore[call-arg]
    async with (
        running(SkillHostService, host_settings("timers,system")) as host,
        running(AudioService, audio) as gateway,
        async_playwright() as pw,
    ):
        await ready(host, "timers", "system")
        browser = await launch_chromium(pw, fake_mic(tmp_path / "mic.wav"))
        try:
            page = await browser.new_page()
            await page.goto(f"http://127.0.0.1:{gateway.backend.port}/")  # type: ignore[attr-defined]
            timers = page.locator('#skills-list li[data-skill="timers"]')

            # Manifests reach audio-io on their own time: refresh until the row is there.
            async def listed() -> bool:
                await page.click("#skills-refresh")
                return (
                    await page.locator('#skills-list li[data-skill="timers"][data-status="ok"]').count() == 1
                )

            await until(listed, timeout=15)
            assert "set_timer" in await timers.inner_text()
            await timers.locator("input[type=checkbox]").click()
            await page.wait_for_selector('#skills-list li[data-skill="timers"][data-status="disabled"]')
            assert not await timers.locator("input[type=checkbox]").is_checked()
            with pytest.raises(nats.errors.NoRespondersError):
                await call_tool(nc, site, "timers", "set_timer", {"seconds": 600, "message": "tea"})
            await timers.locator("input[type=checkbox]").click()

            async def back_on() -> bool:
                await page.click("#skills-refresh")
                return (
                    await page.locator('#skills-list li[data-skill="timers"][data-status="ok"]').count() == 1
                )

            await until(back_on, timeout=15)
            assert await timers.locator("input[type=checkbox]").is_checked()
        finally:
            await browser.close()
