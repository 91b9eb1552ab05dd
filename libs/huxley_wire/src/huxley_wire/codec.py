"""JSON codec for control messages (requests, replies, events).

Control messages are plain JSON objects so `nats sub 'huxley.>'` shows them as
they are. Each one names its schema version in `v`; requests name their
operation in `op`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from huxley_wire import bounded_json
from huxley_wire.errors import ErrorCode, WireError

SCHEMA_VERSION = 1
MAX_CONTROL_BYTES = 256 * 1024


class Message(BaseModel):
    """Base of every control message. Unknown fields are ignored so a newer
    peer can add fields without breaking an older one."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    v: int = SCHEMA_VERSION


class Ok(Message):
    """The reply of a request that has nothing to say but "done"."""

    ok: bool = True


class Request[R: BaseModel](Message):
    """Base of every request; `R` is its reply (`class Acquire(Request[Acquired])`),
    so `rpc.request()` returns the right model and the dispatcher checks what a
    handler returns. Unknown fields are refused: a typo in a request is a bug the
    caller wants to hear about."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    op: ClassVar[str]
    reply_model: ClassVar[type[BaseModel]]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        for base in cls.__mro__:
            meta = getattr(base, "__pydantic_generic_metadata__", None)
            if meta and meta.get("origin") is Request and meta.get("args"):
                cls.reply_model = meta["args"][0]
                return
        if "op" in vars(cls):
            raise TypeError(f"{cls.__name__} names no reply type: declare it as Request[Reply]")


def reply_model_of(request: type[Request[Any]]) -> type[BaseModel]:
    model: type[BaseModel] | None = getattr(request, "reply_model", None)
    if model is None:
        raise TypeError(f"{request.__name__} names no reply type: declare it as Request[Reply]")
    return model


def encode(msg: BaseModel) -> bytes:
    """Never raises for a model that validated (see bounded_json.dumps)."""
    data = msg.model_dump(mode="json")
    if isinstance(msg, Request):
        data["op"] = msg.op
    return bounded_json.dumps(data)


# The one shared `Ok`: a handler that returns it is answered with these
# bytes, encoded once (storage's settings writes, thousands a second).
OK = Ok()
OK_BYTES = encode(OK)


def encode_obj(obj: dict[str, Any]) -> bytes:
    return bounded_json.dumps(obj)


def brief(value: object, limit: int = 40) -> str:
    """A peer's value as it may appear in an error message or a log line:
    its repr, cut short (a 70 KB `op` must not become a 70 KB log line)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


def decode_object(data: bytes, max_bytes: int = MAX_CONTROL_BYTES) -> dict[str, Any]:
    """Bytes to a JSON object, with the checks every subject needs: the bounds
    of bounded_json, an object, and `v` exactly the integer SCHEMA_VERSION
    (`true`, `1.0` and `"1"` are not version 1)."""
    obj = bounded_json.loads(data, max_bytes)
    if not isinstance(obj, dict):
        raise WireError(ErrorCode.BAD_JSON, f"payload must be a JSON object, got {type(obj).__name__}")
    version = obj.get("v")
    if type(version) is not int or version != SCHEMA_VERSION:
        raise WireError(
            ErrorCode.BAD_VERSION,
            f"schema version {brief(version)} not supported, expected the integer {SCHEMA_VERSION}",
        )
    return obj


def describe_validation(exc: ValidationError, limit: int = 3) -> str:
    parts = []
    for err in exc.errors()[:limit]:
        where = ".".join(str(p)[:40] for p in err["loc"]) or "message"
        parts.append(f"{where}: {err['msg']}")
    more = len(exc.errors()) - limit
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def validate[M: BaseModel](obj: dict[str, Any], model: type[M]) -> M:
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        raise WireError(ErrorCode.INVALID, describe_validation(exc)) from None


def decode[M: BaseModel](data: bytes, model: type[M], max_bytes: int = MAX_CONTROL_BYTES) -> M:
    return validate(decode_object(data, max_bytes), model)


class RequestTable:
    """The operations served on one subject, keyed by `op`."""

    def __init__(self, requests: Iterable[type[Request[Any]]]) -> None:
        self.by_op: dict[str, type[Request[Any]]] = {}
        for model in requests:
            if model.op in self.by_op:
                raise ValueError(f"op {model.op!r} declared twice")
            self.by_op[model.op] = model

    def decode(self, data: bytes, max_bytes: int = MAX_CONTROL_BYTES) -> Request[Any]:
        obj = decode_object(data, max_bytes)
        op = obj.pop("op", None)
        model = self.by_op.get(op) if isinstance(op, str) else None
        if model is None:
            known = ", ".join(sorted(self.by_op))
            raise WireError(ErrorCode.UNKNOWN_OP, f"unknown op {brief(op)}; this subject serves: {known}")
        return validate(obj, model)
