"""Headless Chromium for the browser tests: Debian's binary (installed by
scripts/setup-system.sh; never a downloaded one), with a fake microphone that
loops a WAV file and no permission prompt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"

_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
)


async def launch_chromium(playwright: Any, fake_mic: Path) -> Any:
    """A headless browser whose microphone plays `fake_mic` (a WAV, looped)."""
    args = [*_ARGS, f"--use-file-for-fake-audio-capture={fake_mic}"]
    return await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
