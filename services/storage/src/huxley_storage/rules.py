"""The storage rules that need no database: what a key, a value and a prefix
may be, how a prefix becomes a LIKE pattern, and when a session resumes.

Every check raises the `WireError` the caller should see, so the bus adapter
can run them before it touches a database.
"""

from __future__ import annotations

from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages.storage import MAX_KEY_BYTES, MAX_VALUE_BYTES, SESSION_RESUME_S

LIKE_ESCAPE = "\\"


def utf8_size(text: str, what: str) -> int:
    """Bytes of `text` in UTF-8; refuses what no database can store.

    JSON may carry lone surrogates (`"\\ud800"`), which are not Unicode text,
    and PostgreSQL cannot store NUL characters, so neither is accepted on
    either backend."""
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise WireError(ErrorCode.BAD_ENCODING, f"{what} is not valid Unicode (lone surrogate)") from None
    if "\x00" in text:
        raise WireError(ErrorCode.INVALID, f"{what} contains a NUL character, which cannot be stored")
    return size


def check_key(key: str) -> None:
    size = utf8_size(key, "key")
    if size == 0:
        raise WireError(ErrorCode.INVALID, "key must not be empty")
    if size > MAX_KEY_BYTES:
        raise WireError(
            ErrorCode.TOO_LARGE, f"key is {size} bytes; keys are limited to {MAX_KEY_BYTES} bytes (UTF-8)"
        )


def check_text(text: str, what: str = "value") -> None:
    """Values, transcript texts and summaries: at most 64 KiB of UTF-8."""
    size = utf8_size(text, what)
    if size > MAX_VALUE_BYTES:
        raise WireError(
            ErrorCode.TOO_LARGE,
            f"{what} is {size} bytes; {what}s are limited to {MAX_VALUE_BYTES} bytes (64 KiB, UTF-8)",
        )


def check_prefix(prefix: str) -> None:
    """A prefix is a key that may be empty."""
    if prefix:
        check_key(prefix)
    else:
        utf8_size(prefix, "prefix")


def like_prefix(prefix: str) -> str:
    """The LIKE pattern (with ESCAPE '\\') matching keys that start with `prefix`.

    `%`, `_` and the escape character itself are escaped so they match only
    themselves."""
    escaped = (
        prefix.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )
    return escaped + "%"


def should_resume(last_active_at: float | None, now: float, window_s: float = SESSION_RESUME_S) -> bool:
    """Resume the latest session when it was active within the window.

    A clock that went backwards (last activity "in the future") counts as
    recent: the conversation is still going on."""
    return last_active_at is not None and now - last_active_at <= window_s
