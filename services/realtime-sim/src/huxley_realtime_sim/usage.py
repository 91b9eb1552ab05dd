"""Token counts for `response.done`, in the shape of RealtimeResponseUsage, so
the bridge can price a simulated session like a real one.

Text is ~4 characters a token; user audio 1 token per 100 ms, assistant audio
1 per 50 ms (both for what it produced and for earlier assistant audio read
back as context); input the previous response already read counts as cached,
in 64-token blocks.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

CACHE_BLOCK = 64


def text_tokens(text: str) -> int:
    return (len(text) + 3) // 4


def context_text(session: dict[str, Any], items: Iterable[dict[str, Any]]) -> str:
    """Everything textual the model reads: instructions, tools, the items."""
    text = session.get("instructions") or ""
    text += json.dumps(session.get("tools") or [])
    for item in items:
        for part in item.get("content", []) or []:
            if isinstance(part, dict):
                text += part.get("text") or part.get("transcript") or ""
        text += item.get("output", "") + item.get("arguments", "")
    return text


class TokenMeter:
    """One session's counts; remembers the last input size for caching."""

    def __init__(self) -> None:
        self._previous_input_tokens = 0

    def usage(
        self,
        *,
        context: str,
        user_audio_ms: float,
        earlier_assistant_ms: float,
        output_texts: Iterable[str],
        output_audio_ms: float,
    ) -> dict[str, Any]:
        input_text = text_tokens(context)
        input_audio = int(user_audio_ms / 100) + int(max(0.0, earlier_assistant_ms) / 50)
        input_total = input_text + input_audio
        cached = min(self._previous_input_tokens, input_total) // CACHE_BLOCK * CACHE_BLOCK
        cached_audio = min(cached, input_audio)
        self._previous_input_tokens = input_total
        output_text = sum(text_tokens(t) for t in output_texts)
        output_audio = int(output_audio_ms / 50)
        return {
            "total_tokens": input_total + output_text + output_audio,
            "input_tokens": input_total,
            "output_tokens": output_text + output_audio,
            "input_token_details": {
                "text_tokens": input_text,
                "audio_tokens": input_audio,
                "image_tokens": 0,
                "cached_tokens": cached,
                "cached_tokens_details": {
                    "text_tokens": cached - cached_audio,
                    "audio_tokens": cached_audio,
                    "image_tokens": 0,
                },
            },
            "output_token_details": {"text_tokens": output_text, "audio_tokens": output_audio},
        }
