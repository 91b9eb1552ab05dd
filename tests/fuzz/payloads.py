"""Hypothesis strategies for request payloads, derived from the request models
in huxley_wire.messages: the classes issue 13 found (deep nesting, huge
integers, lone surrogates, sizes near max_payload, `v` values other than the
integer 1) and a wrong type in every field of every request model.

Hypothesis draws the examples (`draw`), deterministically; the tests send
them to the running stack and check every reply."""

from __future__ import annotations

import json
import types
from typing import Any, Union, get_args, get_origin

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from huxley_wire.codec import Request
from huxley_wire.messages import audio, bridge, focus, skills, storage

JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.floats(allow_nan=False), st.text(max_size=20)
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def requests_of(module: types.ModuleType) -> list[type[Request[Any]]]:
    found = []
    for value in vars(module).values():
        is_request = isinstance(value, type) and issubclass(value, Request) and value is not Request
        if is_request and value.__module__ == module.__name__ and isinstance(getattr(value, "op", None), str):
            found.append(value)
    return sorted(found, key=lambda m: m.__name__)


def _notifications() -> list[type[Request[Any]]]:
    return [focus.FocusChange, focus.PatienceExpired, focus.EffectDropped]


def by_subject_kind() -> dict[str, list[type[Request[Any]]]]:
    """Which request models go to which kind of subject."""
    store = requests_of(storage)
    notes = _notifications()
    return {
        "storage.kv": [m for m in store if m.__name__.startswith("Kv")],
        "storage.schema": [m for m in store if m.__name__.startswith("Schema")],
        "storage.sessions": [m for m in store if m.__name__.startswith("Session")],
        "storage.admin": [m for m in store if m.__name__.startswith(("Admin", "Clear"))],
        "focus.rpc": [m for m in requests_of(focus) if m not in notes],
        "focus.notify": notes,
        "bridge.rpc": [m for m in requests_of(bridge) if m is not bridge.RunInject],
        "bridge.inject": [bridge.RunInject],
        "skills.tool": [skills.ToolCall],
        "skills.host": [skills.DiscardEffect],
        "skills.setup": [m for m in requests_of(skills) if m not in (skills.ToolCall, skills.DiscardEffect)],
        "audio.rpc": requests_of(audio),
    }


# -- wrong types -------------------------------------------------------------------------------
def _kinds(annotation: Any) -> set[type]:
    """The JSON kinds a field accepts (roughly: enough to pick a wrong one)."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return set().union(*(_kinds(a) for a in get_args(annotation)))
    if annotation is type(None):
        return {type(None)}
    if origin is not None:
        annotation = origin
    if isinstance(annotation, type):
        if issubclass(annotation, bool):
            return {bool}
        if issubclass(annotation, str):  # enums of str, too
            return {str}
        if issubclass(annotation, int | float):
            return {int, float}
        if issubclass(annotation, dict | BaseModel):
            return {dict}
        if issubclass(annotation, list | tuple | set):
            return {list}
    return {str}  # Literal and the like: a string is the usual right type


WRONG: dict[type, st.SearchStrategy[Any]] = {
    str: st.one_of(st.integers(), st.lists(st.text(max_size=3), max_size=2), st.booleans()),
    int: st.one_of(
        st.text(min_size=1, max_size=5).filter(lambda s: not s.strip().lstrip("-").isdigit()),
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.text(max_size=3), st.integers()),
    ),
    float: st.one_of(st.text(min_size=1, max_size=5), st.lists(st.integers(), max_size=2)),
    bool: st.one_of(st.text(min_size=2, max_size=5), st.lists(st.integers(), max_size=2)),
    dict: st.one_of(st.text(max_size=5), st.integers(), st.lists(st.integers(), max_size=2)),
    list: st.one_of(st.text(max_size=5), st.integers(), st.dictionaries(st.text(max_size=3), st.integers())),
    type(None): st.integers(),
}


def wrong_value(annotation: Any) -> st.SearchStrategy[Any]:
    right = _kinds(annotation)
    choices = [strategy for kind, strategy in WRONG.items() if kind not in right and kind is not type(None)]
    return st.one_of(*choices)


def _filler(annotation: Any) -> Any:
    """A plausible value of a field (so that only the field under test is wrong)."""
    kinds = _kinds(annotation)
    for kind, value in ((str, "x"), (int, 1), (bool, True), (list, []), (dict, {}), (type(None), None)):
        if kind in kinds:
            return value
    return "x"


def base_payload(model: type[Request[Any]]) -> dict[str, Any]:
    payload: dict[str, Any] = {"v": 1, "op": model.op}
    for name, info in model.model_fields.items():
        if name != "op" and info.is_required():
            payload[name] = _filler(info.annotation)
    return payload


@st.composite
def wrong_types(draw: st.DrawFn, models: list[type[Request[Any]]]) -> dict[str, Any]:
    model = draw(st.sampled_from(models))
    fields = [n for n in model.model_fields if n != "op"]
    payload = base_payload(model)
    if fields:
        name = draw(st.sampled_from(fields))
        payload[name] = draw(wrong_value(model.model_fields[name].annotation))
    return payload


def locally_valid(models: list[type[Request[Any]]], payload: dict[str, Any]) -> bool:
    """Whether the request model itself accepts the payload (then a plain
    reply, not an error, is right)."""
    model = next((m for m in models if m.op == payload.get("op")), None)
    if model is None or payload.get("v") != 1 or type(payload.get("v")) is not int:
        return False
    try:
        model.model_validate({k: v for k, v in payload.items() if k not in ("v", "op")})
    except ValidationError:
        return False
    return True


# -- the malformed classes ---------------------------------------------------------------------
def nested(depth: int, op: str) -> bytes:
    inner = "[" * depth + "]" * depth
    return f'{{"v": 1, "op": "{op}", "x": {inner}}}'.encode()


@st.composite
def malformed(draw: st.DrawFn, ops: list[str], max_payload: int) -> bytes:
    op = draw(st.sampled_from(ops))
    kind = draw(st.sampled_from(["deep", "bigint", "surrogate", "near_max", "version", "junk", "op"]))
    if kind == "deep":
        return nested(draw(st.integers(65, 30_000)), op)
    if kind == "bigint":
        digits = draw(st.integers(65, 50_000))
        return f'{{"v": 1, "op": "{op}", "x": {"7" * digits}}}'.encode()
    if kind == "surrogate":
        code = draw(st.integers(0xD800, 0xDFFF))
        where = draw(st.sampled_from(["value", "key", "op"]))
        escape = f"\\u{code:04x}"
        if where == "op":
            return f'{{"v": 1, "op": "{escape}"}}'.encode()
        if where == "key":
            return f'{{"v": 1, "op": "{op}", "{escape}": 1}}'.encode()
        return f'{{"v": 1, "op": "{op}", "inject_id": "{escape}", "key": "{escape}"}}'.encode()
    if kind == "near_max":
        size = max_payload - draw(st.integers(0, 64))
        head, tail = f'{{"v": 1, "op": "{op}", "pad": "'.encode(), b'"}'
        return head + b"p" * (size - len(head) - len(tail)) + tail
    if kind == "version":
        v = draw(st.one_of(st.sampled_from([True, 1.0, "1", 0, 2, -1, None, [1], {"v": 1}]), st.integers()))
        return json.dumps({"v": v, "op": op}).encode()
    if kind == "op":
        return json.dumps({"v": 1, "op": draw(JSON)}).encode()
    return draw(st.one_of(st.binary(max_size=64), JSON.map(lambda x: json.dumps(x).encode())))


def draw[T](strategy: st.SearchStrategy[T], count: int) -> list[T]:
    """`count` examples of a strategy, the same on every run."""
    found: list[T] = []

    @settings(
        max_examples=count,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        deadline=None,
    )
    @given(strategy)
    def collect(value: T) -> None:
        found.append(value)

    collect()
    return found
