"""JSON that no peer can poison: the one parser and the one writer of the wire.

Parsing is the stdlib `json` with bounds checked around it, each failure a
`WireError` with its own code (never a RecursionError, a ValueError or a
string a later write chokes on):

- size: more than `max_bytes` -> `too_large`, before anything else is read;
- encoding: invalid UTF-8, or a lone surrogate spelled as a `\\ud800` escape
  (valid JSON, not valid Unicode) anywhere in a key or value -> `bad_encoding`;
- nesting deeper than `MAX_DEPTH`, counted without recursion before the
  parser (which recurses) sees the text -> `invalid`;
- an integer longer than `MAX_INT_DIGITS` digits, refused before it is
  converted (Python's own 4,300-digit limit raises ValueError) -> `invalid`.

Writing never raises for what parsing accepted or a model holds: a lone
surrogate that got into a string some other way is written as U+FFFD.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

import pydantic_core

from huxley_wire.errors import ErrorCode, WireError

MAX_DEPTH = 64
MAX_INT_DIGITS = 64

_COMPACT = (",", ":")
# A JSON string literal (the unrolled form: linear, no backtracking).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
# An escape in the surrogate range: only then can a parsed string hold one.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")


class _IntTooLong(Exception):
    pass


def _parse_int(digits: str) -> int:
    if len(digits) - digits.startswith("-") > MAX_INT_DIGITS:
        raise _IntTooLong
    return int(digits)


# One decoder for every parse (json.loads with parse_int builds a new one per call).
_DECODER = json.JSONDecoder(parse_int=_parse_int)


def too_deep(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether arrays/objects nest deeper than `limit`, brackets inside
    strings not counted. Cheap when there are few brackets at all."""
    if text.count("[") + text.count("{") <= limit:
        return False
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0) > limit


def has_lone_surrogate(obj: Any) -> bool:
    """Whether any string (keys included) in a parsed value holds a surrogate
    code point; walked with a stack, not recursion."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii() and _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def loads(data: bytes, max_bytes: int) -> Any:
    """Bytes to a JSON value within every bound above, or a WireError."""
    if len(data) > max_bytes:
        raise WireError(ErrorCode.TOO_LARGE, f"payload is {len(data)} bytes, limit {max_bytes}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WireError(ErrorCode.BAD_ENCODING, f"payload is not valid UTF-8: {exc}") from None
    if too_deep(text):
        raise WireError(ErrorCode.INVALID, f"JSON nested deeper than {MAX_DEPTH} levels")
    try:
        obj = _DECODER.decode(text)
    except _IntTooLong:
        raise WireError(ErrorCode.INVALID, f"an integer has more than {MAX_INT_DIGITS} digits") from None
    except RecursionError:  # not reached after too_deep(); kept so it can never escape
        raise WireError(ErrorCode.INVALID, f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise WireError(ErrorCode.BAD_JSON, f"payload is not JSON: {exc}") from None
    if _SURROGATE_ESCAPE.search(text) and has_lone_surrogate(obj):
        raise WireError(
            ErrorCode.BAD_ENCODING, "a string holds a lone surrogate (\\ud800-\\udfff): not valid Unicode"
        )
    return obj


def _scrubbed(obj: Any) -> Any:
    if isinstance(obj, str):
        return _SURROGATE.sub("\ufffd", obj)
    if isinstance(obj, dict):
        return {_scrubbed(k): _scrubbed(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_scrubbed(v) for v in obj]
    return obj


def dumps(obj: Any) -> bytes:
    """A JSON value to compact UTF-8 bytes, non-ASCII kept readable."""
    try:
        text = json.dumps(obj, separators=_COMPACT, ensure_ascii=False)
    except ValueError:  # an int past Python's str-conversion limit: pydantic-core writes those
        return pydantic_core.to_json(_scrubbed(obj))
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate: U+FFFD rather than a failed publish
        return _SURROGATE.sub("\ufffd", text).encode()
