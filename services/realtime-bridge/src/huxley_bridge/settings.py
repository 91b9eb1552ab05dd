"""The bridge's settings (HUXLEY_ prefix, plus OPENAI_API_KEY)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr

from huxley_bridge.cost import Pricing, Thresholds
from huxley_bridge.reconnect import DEFAULT_DELAYS_S
from huxley_runtime.settings import HuxleySettings
from huxley_wire.messages.skills import TOOL_TIMEOUT_S


class BridgeSettings(HuxleySettings):
    # The key for the real model; without it (and without realtime_url) the bridge is offline.
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "HUXLEY_OPENAI_API_KEY")
    )
    # A websocket base URL instead of OpenAI's (`huxley up` points it at huxley-realtime-sim).
    realtime_url: str | None = None
    # Where to go when there is no key (compose points it at the realtime-sim container);
    # ignored once OPENAI_API_KEY is set.
    realtime_offline_url: str | None = None
    realtime_model: str = "gpt-realtime"
    transcription_model: str = "whisper-1"
    language: str | None = None  # one of the persona's languages; default its own
    idle_limit_s: float = Field(default=55 * 60, gt=0)
    # Waits before each reconnect attempt; the last one repeats (HUXLEY_RECONNECT_DELAYS_S='[1,3,10,30,60]').
    reconnect_delays_s: tuple[float, ...] = Field(default=DEFAULT_DELAYS_S, min_length=1)
    tool_timeout_s: float = Field(default=TOOL_TIMEOUT_S + 5.0, gt=0)
    cost_warn_usd: float = Field(default=0.50, ge=0)
    cost_canary_usd: float = Field(default=5.00, ge=0)
    cost_kill_usd: float = Field(default=20.00, ge=0)
    pricing: Pricing = Pricing()  # HUXLEY_PRICING='{"audio_output": 64, ...}' (USD per 1M tokens)

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds(
            warn_usd=self.cost_warn_usd, canary_usd=self.cost_canary_usd, kill_usd=self.cost_kill_usd
        )
