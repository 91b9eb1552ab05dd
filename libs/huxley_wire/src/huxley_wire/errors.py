"""The one error envelope every request subject answers with on failure.

{"v": 1, "error": {"code": "<ErrorCode>", "message": "<human readable>"}}
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

# An error message stays a line, whatever a peer put in it.
MAX_MESSAGE_CHARS = 1000


class ErrorCode(StrEnum):
    BAD_JSON = "bad_json"  # payload is not a JSON object
    BAD_VERSION = "bad_version"  # `v` missing, not the integer 1 (`true`, `1.0`, `"1"` are not)
    UNKNOWN_OP = "unknown_op"  # `op` missing or not served on this subject
    INVALID = "invalid"  # fields missing or wrong; JSON nested too deep; an integer too long
    TOO_LARGE = "too_large"  # payload, key or value over its limit
    BAD_ENCODING = "bad_encoding"  # invalid UTF-8, or a lone surrogate escape (`"\\ud800"`)
    NOT_FOUND = "not_found"
    QUOTA_EXCEEDED = "quota_exceeded"  # a skill's storage namespace is full (keys or bytes)
    NOT_HOLDER = "not_holder"  # releasing an activity you do not hold
    CLAIM_BUSY = "claim_busy"  # COMMS already holds a claim
    UNKNOWN_TOOL = "unknown_tool"
    TOOL_FAILED = "tool_failed"  # the skill raised
    TIMEOUT = "timeout"  # the work did not finish in time (a hung tool)
    UNAVAILABLE = "unavailable"  # a dependency (database, peer) is down
    INTERNAL = "internal"


class WireError(Exception):
    """An error that becomes the envelope on the wire (and back again)."""

    def __init__(self, code: ErrorCode | str, message: str) -> None:
        if len(message) > MAX_MESSAGE_CHARS:
            message = f"{message[:MAX_MESSAGE_CHARS]}... ({len(message)} chars)"
        super().__init__(f"{code}: {message}")
        self.code = ErrorCode(code) if code in ErrorCode._value2member_map_ else code
        self.message = message

    def envelope(self) -> dict[str, Any]:
        return {"v": 1, "error": {"code": str(self.code), "message": self.message}}


def parse_envelope(obj: Any) -> WireError | None:
    """The error carried by a decoded reply, or None if it is not an error."""
    if isinstance(obj, dict) and isinstance(obj.get("error"), dict):
        err = obj["error"]
        return WireError(str(err.get("code", ErrorCode.INTERNAL)), str(err.get("message", "")))
    return None
