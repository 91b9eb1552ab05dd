"""The stack as `make up` runs it for a browser: the same processes as
stack.Stack, but audio-io is the real service with its web backend (the
gateway serving the page), and the persona has only the published `system`
skill. Plus the fake microphone Chromium loops and the page-side recorder."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from e2e.stack import SERVICES, Stack
from huxley_realtime_sim import marker_pcm
from huxley_realtime_sim.markers import TONE_MS

PERSONA = "browser"
MIC_RATE = 48_000
SIM_RATE = 24_000
MARKER_PERIOD_MS = 500  # one "1" key per period of the looped file


# The page keeps its state in body data attributes; this records every value
# they take (the page itself is not changed: the test watches its DOM).
RECORD_BODY = """
window.__seen = [];
document.addEventListener("DOMContentLoaded", () => {
  const keep = () => window.__seen.push({
    state: document.body.dataset.state ?? null,
    speaking: document.body.dataset.speaking ?? null,
  });
  keep();
  new MutationObserver(keep).observe(document.body, {
    attributes: true, attributeFilter: ["data-state", "data-speaking"],
  });
});
"""


class WebStack(Stack):
    services = {**SERVICES, "audio-io": "huxley_audio_io"}  # the real web backend, not the file rig

    async def page_url(self) -> str:
        health = await self.health("audio-io")
        assert health is not None and health.detail.get("port"), health
        return f"http://127.0.0.1:{health.detail['port']}/"


def write_web_persona(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"""
version: 1
name: {PERSONA}
voice: alloy
language_code: en
transcription_language: en
timezone: Europe/London
system_prompt: You are Huxley, under test in a browser.
skills:
  system:
    timezone: Europe/London
""".lstrip()
    )
    return path


def marker_mic(path: Path, key: str) -> Path:
    """A 48 kHz WAV of one period holding DTMF `key` in silence. Chromium loops
    it as the microphone, so any stretch of a press longer than two periods
    holds at least one whole key, whatever the phase the capture starts at."""
    lead_ms = 200
    pcm = marker_pcm(key, lead_ms=lead_ms, tail_ms=MARKER_PERIOD_MS - lead_ms - TONE_MS)  # tail holds the gap
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    assert samples.size == SIM_RATE * MARKER_PERIOD_MS // 1000, samples.size
    at_48k = np.arange(samples.size * MIC_RATE // SIM_RATE) * SIM_RATE / MIC_RATE
    upsampled = np.interp(at_48k, np.arange(samples.size), samples)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(MIC_RATE)
        wav.writeframes(np.round(upsampled).astype("<i2").tobytes())
    return path
