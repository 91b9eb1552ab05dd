import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from huxley_wire.codec import RequestTable, decode, decode_object, encode
from huxley_wire.errors import ErrorCode, WireError, parse_envelope
from huxley_wire.messages import focus as fm
from huxley_wire.messages import storage as sm


def test_request_encodes_its_op_and_version():
    data = json.loads(encode(sm.KvSet(key="a", value="b")))
    assert data == {"v": 1, "key": "a", "value": "b", "op": "set"}


def test_table_decodes_by_op():
    table = RequestTable([sm.KvGet, sm.KvSet])
    request = table.decode(encode(sm.KvSet(key="k", value="v")))
    assert isinstance(request, sm.KvSet)
    assert (request.key, request.value) == ("k", "v")


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"{not json", ErrorCode.BAD_JSON),
        (b"[1, 2]", ErrorCode.BAD_JSON),
        (b'{"op": "get", "key": "a"}', ErrorCode.BAD_VERSION),
        (b'{"v": 2, "op": "get", "key": "a"}', ErrorCode.BAD_VERSION),
        (b'{"v": 1, "op": "explode"}', ErrorCode.UNKNOWN_OP),
        (b'{"v": 1, "key": "a"}', ErrorCode.UNKNOWN_OP),
        (b'{"v": 1, "op": "get", "key": 5}', ErrorCode.INVALID),
        (b'{"v": 1, "op": "get"}', ErrorCode.INVALID),
        (b'{"v": 1, "op": "get", "key": "a", "surprise": 1}', ErrorCode.INVALID),
        (b'{"v": 1, "op": "get", "key": "\xff"}', ErrorCode.BAD_ENCODING),
    ],
)
def test_bad_requests_raise_the_right_code(payload, code):
    table = RequestTable([sm.KvGet, sm.KvSet])
    with pytest.raises(WireError) as info:
        table.decode(payload)
    assert info.value.code == code
    assert info.value.message


def test_oversize_payload_is_refused_before_parsing():
    with pytest.raises(WireError) as info:
        decode_object(b'{"v":1}' + b" " * 100, max_bytes=50)
    assert info.value.code == ErrorCode.TOO_LARGE


def test_envelope_round_trip():
    err = WireError(ErrorCode.CLAIM_BUSY, "a claim is live")
    back = parse_envelope(json.loads(json.dumps(err.envelope())))
    assert back is not None and back.code == ErrorCode.CLAIM_BUSY and back.message == "a claim is live"
    assert parse_envelope({"v": 1, "ok": True}) is None


def test_events_ignore_unknown_fields_for_forward_compatibility():
    event = decode(
        json.dumps({"v": 1, "inject_id": "i1", "status": "done", "new_field": 1}).encode(),
        fm.InjectEvent,
    )
    assert event.status == "done"


@given(key=st.text(max_size=50), value=st.text(max_size=200))
def test_any_text_round_trips(key, value):
    table = RequestTable([sm.KvSet])
    back = table.decode(encode(sm.KvSet(key=key, value=value)))
    assert (back.key, back.value) == (key, value)
