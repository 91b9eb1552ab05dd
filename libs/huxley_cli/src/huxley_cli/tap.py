"""`huxley tap`: one readable line per bus message.

Control messages print as compact JSON; audio frames as a one-line summary
(stream, seq, bytes, level); anything undecodable says so instead of failing.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

from huxley_wire.audio import decode_frame, level_dbfs
from huxley_wire.errors import WireError

MAX_JSON_CHARS = 400


def _clock() -> str:
    return datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]


def format_message(subject: str, data: bytes, reply: str = "", *, audio: bool = False) -> str:
    prefix = f"{_clock()} {subject}"
    if audio:
        try:
            frame = decode_frame(data)
        except WireError as exc:
            return f"{prefix} AUDIO <undecodable: {exc.message}>"
        level = level_dbfs(frame.pcm)
        level_text = "silent" if math.isinf(level) else f"{level:.1f} dBFS"
        eos = " eos" if frame.eos else ""
        return (
            f"{prefix} AUDIO stream={frame.stream} seq={frame.seq} "
            f"bytes={len(frame.pcm)} level={level_text}{eos}"
        )
    if not data:
        body = "<empty>"
    else:
        try:
            body = json.dumps(json.loads(data), separators=(",", ":"), ensure_ascii=False)
        except (ValueError, UnicodeDecodeError):
            body = f"<{len(data)} bytes, not JSON>"
    if len(body) > MAX_JSON_CHARS:
        body = body[:MAX_JSON_CHARS] + f"... ({len(body)} chars)"
    kind = " (request)" if reply else ""
    return f"{prefix}{kind} {body}"
