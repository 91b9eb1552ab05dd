"""What the user heard of a reply that was cut short: its transcript cut in
proportion to the audio played. The Realtime API gives no transcript of a
truncated item (it deletes the server-side text), so the bridge cuts the
one it has."""

from __future__ import annotations


def heard_text(text: str, heard_ms: float, total_ms: float) -> str:
    """The words of `text` that fit in `heard_ms` of its `total_ms` of audio."""
    if total_ms <= 0:
        return ""
    if heard_ms >= total_ms - 0.5:
        return text
    words = text.split()
    keep = round(len(words) * max(0.0, heard_ms) / total_ms)
    return " ".join(words[:keep])
