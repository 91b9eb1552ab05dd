"""The decoder no payload can poison, over generated input: every class the
chaos run found (deep nesting, huge integers, lone surrogates, `v` of the
wrong type, sizes around the limit) and plain random bytes end in a WireError
with its code, never another exception; and `encode` never raises."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from huxley_wire.bounded_json import MAX_DEPTH, MAX_INT_DIGITS, too_deep
from huxley_wire.codec import RequestTable, decode_object, encode
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages import storage as sm

TABLE = RequestTable([sm.KvGet, sm.KvSet])


def code_of(payload: bytes, max_bytes: int = 256 * 1024) -> ErrorCode | str | None:
    try:
        TABLE.decode(payload, max_bytes)
    except WireError as exc:
        assert exc.message
        return exc.code
    return None


def nested(depth: int, opens: list[str]) -> str:
    """`depth` levels of arrays/objects around a 1."""
    text = "1"
    for level in range(depth):
        text = f'{{"k":{text}}}' if opens[level % len(opens)] == "{" else f"[{text}]"
    return text


def get_with(value_json: str) -> bytes:
    return f'{{"v":1,"op":"set","key":"k","value":"x","extra":{value_json}}}'.encode()


@settings(max_examples=40, deadline=None)
@given(depth=st.integers(MAX_DEPTH + 1, 20_000), opens=st.lists(st.sampled_from("[{"), min_size=1))
def test_nesting_past_the_limit_is_invalid_not_a_recursion_error(depth, opens):
    assert code_of(get_with(nested(depth, opens))) == ErrorCode.INVALID


@settings(max_examples=40, deadline=None)
@given(depth=st.integers(0, MAX_DEPTH - 1), opens=st.lists(st.sampled_from("[{"), min_size=1))
def test_nesting_within_the_limit_parses(depth, opens):
    obj = decode_object(f'{{"v":1,"x":{nested(depth, opens)}}}'.encode())
    assert obj["v"] == 1


@given(text=st.text(alphabet='[]{}"\\ ,:1a', max_size=300))
def test_brackets_inside_strings_do_not_count(text):
    inside = json.dumps("[" * 200 + text)
    assert not too_deep(f'{{"v":1,"s":{inside}}}')


@settings(max_examples=40, deadline=None)
@given(digits=st.integers(MAX_INT_DIGITS + 1, 100_000), sign=st.sampled_from(["", "-"]))
def test_huge_integers_are_invalid_at_any_size(digits, sign):
    # Past 4,300 digits Python's int() itself raises ValueError: still `invalid`.
    assert code_of(get_with(sign + "7" * digits)) == ErrorCode.INVALID


@given(n=st.integers(-(10**MAX_INT_DIGITS) + 1, 10**MAX_INT_DIGITS - 1))
def test_integers_up_to_the_limit_parse(n):
    assert decode_object(b'{"v":1,"n":%d}' % n)["n"] == n


surrogate_escape = st.integers(0xD800, 0xDFFF).map(lambda c: f"\\u{c:04x}")


@given(
    escape=surrogate_escape,
    where=st.sampled_from(["key", "value", "op", "nested_key", "nested_value", "list"]),
    before=st.text(alphabet="abc é", max_size=5),
)
def test_a_lone_surrogate_anywhere_is_bad_encoding(escape, where, before):
    s = f"{before}{escape}"
    payloads = {
        "key": f'{{"v":1,"op":"get","key":"{s}"}}',
        "value": f'{{"v":1,"op":"set","key":"k","value":"{s}"}}',
        "op": f'{{"v":1,"op":"{s}"}}',
        "nested_key": f'{{"v":1,"op":"get","key":"k","x":{{"{s}":1}}}}',
        "nested_value": f'{{"v":1,"op":"get","key":"k","x":[{{"y":["{s}"]}}]}}',
        "list": f'{{"v":1,"op":"get","key":"k","x":[1,"{s}"]}}',
    }
    assert code_of(payloads[where].encode()) == ErrorCode.BAD_ENCODING


@given(char=st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF))
def test_a_surrogate_pair_is_one_character_and_fine(char):
    pair = json.dumps(char)  # ensure_ascii: "\ud83d\ude00"-style escapes
    request = TABLE.decode(f'{{"v":1,"op":"get","key":{pair}}}'.encode())
    assert isinstance(request, sm.KvGet) and request.key == char


@given(
    version=st.one_of(
        st.booleans(),
        st.floats(allow_nan=False),
        st.text(max_size=5),
        st.none(),
        st.lists(st.integers(), max_size=2),
        st.integers().filter(lambda n: n != 1),
    )
)
def test_only_the_integer_1_is_version_1(version):
    payload = json.dumps({"v": version, "op": "get", "key": "a"}).encode()
    assert code_of(payload) == ErrorCode.BAD_VERSION


@pytest.mark.parametrize("version", ["true", "1.0", '"1"', "1e0", "[1]"])
def test_version_spellings_that_are_not_the_integer_1(version):
    assert code_of(f'{{"v":{version},"op":"get","key":"a"}}'.encode()) == ErrorCode.BAD_VERSION


@given(delta=st.integers(-3, 3), limit=st.integers(64, 4096))
def test_sizes_around_the_limit(delta, limit):
    head, tail = b'{"v":1,"op":"get","key":"', b'"}'
    size = limit + delta
    payload = head + b"k" * (size - len(head) - len(tail)) + tail
    assert code_of(payload, max_bytes=limit) == (ErrorCode.TOO_LARGE if size > limit else None)


@settings(max_examples=300)
@given(data=st.binary(max_size=400))
def test_random_bytes_end_in_a_wire_error_or_a_request(data):
    code_of(data)  # any other exception fails the test


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


@given(extra=json_values, op=st.sampled_from(["get", "set", "nope"]))
def test_well_formed_junk_ends_in_a_wire_error_or_a_request(extra, op):
    code_of(json.dumps({"v": 1, "op": op, "key": extra}).encode())


any_text = st.text(
    alphabet=st.one_of(st.characters(), st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF))
)


@given(key=any_text, value=any_text)
def test_encode_never_raises_and_writes_what_decode_takes(key, value):
    # A model can hold a lone surrogate that did not come from the wire (a
    # model's transcript, a file): encoding it must not break a publish.
    data = encode(sm.KvSet(key=key, value=value))
    back = TABLE.decode(data)
    assert isinstance(back, sm.KvSet)
    if not any(0xD800 <= ord(c) <= 0xDFFF for c in key + value):
        assert (back.key, back.value) == (key, value)


def test_a_surrogate_is_written_as_the_replacement_character():
    assert json.loads(encode(sm.KvGet(key="a\ud800b")))["key"] == "a\ufffdb"


def test_what_a_peer_sent_is_echoed_briefly():
    with pytest.raises(WireError) as info:
        TABLE.decode(b'{"v":1,"op":"' + b"x" * 70_000 + b'"}')
    assert info.value.code == ErrorCode.UNKNOWN_OP and len(info.value.message) < 200
    with pytest.raises(WireError) as info:
        TABLE.decode(b'{"v":1,"op":"get","key":"k","' + b"y" * 70_000 + b'":1}')
    assert info.value.code == ErrorCode.INVALID and len(info.value.message) < 200
