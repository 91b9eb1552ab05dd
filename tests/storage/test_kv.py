"""Settings over the bus, against the real service and database (both backends)."""

from __future__ import annotations

import json
import random

import pytest
from nats.aio.client import Client

from huxley_runtime.storage_client import SettingsClient
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages.storage import MAX_KEY_BYTES, MAX_VALUE_BYTES, REPLY_PAGE_BYTES

pytestmark = pytest.mark.usefixtures("storage")


async def raw(nc: Client, subject: str, payload: bytes | dict) -> dict:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return json.loads((await nc.request(subject, data, timeout=5)).data)


def error_code(reply: dict) -> str | None:
    return reply.get("error", {}).get("code")


async def test_set_get_delete_round_trip(kv: SettingsClient):
    assert await kv.get_setting("last_book_id") is None
    assert await kv.get_setting("last_book_id", default="none") == "none"
    await kv.set_setting("last_book_id", "el_principito")
    assert await kv.get_setting("last_book_id") == "el_principito"
    await kv.set_setting("last_book_id", "moby_dick")
    assert await kv.get_setting("last_book_id") == "moby_dick"
    await kv.delete_setting("last_book_id")
    assert await kv.get_setting("last_book_id") is None


async def test_set_and_delete_are_idempotent(nc, subjects, persona, kv):
    subject = subjects.storage_kv(persona, "timers")
    for _ in range(2):
        assert await raw(nc, subject, {"v": 1, "op": "set", "key": "k", "value": "v"}) == {"v": 1, "ok": True}
    assert await kv.get_setting("k") == "v"
    first = await raw(nc, subject, {"v": 1, "op": "delete", "key": "k"})
    again = await raw(nc, subject, {"v": 1, "op": "delete", "key": "k"})
    assert first["deleted"] is True and again["deleted"] is False
    assert await kv.get_setting("k") is None


async def test_values_are_kept_exactly(kv: SettingsClient):
    tricky = ["", " ", "ñandú 🦤", '{"a": [1, "\\u00e9"]}', "line\nbreak\ttab", "\x01\x1f", "a" * 1000]
    for n, value in enumerate(tricky):
        await kv.set_setting(f"v{n}", value)
    for n, value in enumerate(tricky):
        assert await kv.get_setting(f"v{n}") == value


async def test_list_is_sorted_and_keys_have_no_namespace(kv: SettingsClient):
    for key in ["timer:b", "timer:a", "other", "timer:c", "timer"]:
        await kv.set_setting(key, key.upper())
    assert await kv.list_settings("timer:") == [
        ("timer:a", "TIMER:A"),
        ("timer:b", "TIMER:B"),
        ("timer:c", "TIMER:C"),
    ]
    assert [k for k, _ in await kv.list_settings()] == ["other", "timer", "timer:a", "timer:b", "timer:c"]
    assert await kv.list_settings("nothing") == []


async def test_prefix_wildcards_and_case_are_literal(kv: SettingsClient):
    keys = ["50%", "50%off", "500", "a_b", "axb", "a\\b", "a\\\\b", "ab", "Timer:1", "timer:1", "TIMER:2"]
    for key in keys:
        await kv.set_setting(key, "x")
    assert [k for k, _ in await kv.list_settings("50%")] == ["50%", "50%off"]
    assert [k for k, _ in await kv.list_settings("a_")] == ["a_b"]
    assert [k for k, _ in await kv.list_settings("a\\")] == ["a\\\\b", "a\\b"]
    assert [k for k, _ in await kv.list_settings("timer:")] == ["timer:1"]
    assert [k for k, _ in await kv.list_settings("T")] == ["TIMER:2", "Timer:1"]
    assert [k for k, _ in await kv.list_settings("%")] == []


async def test_list_matches_a_python_model_on_random_keys(kv: SettingsClient):
    rng = random.Random(1234)
    alphabet = "aAbB%_\\:ñ€🦤 ."
    model: dict[str, str] = {}
    for n in range(120):
        key = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6)))
        model[key] = str(n)
        await kv.set_setting(key, str(n))
    prefixes = ["", *("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 3))) for _ in range(40))]
    for prefix in prefixes:
        expected = sorted((k, v) for k, v in model.items() if k.startswith(prefix))
        assert await kv.list_settings(prefix) == expected, prefix


async def test_long_lists_come_in_pages(nc, subjects, persona, kv):
    value = "v" * 10_000
    keys = [f"item:{n:03d}" for n in range(3 * REPLY_PAGE_BYTES // 10_000)]
    for key in keys:
        await kv.set_setting(key, value)
    first = await raw(nc, subjects.storage_kv(persona, "timers"), {"v": 1, "op": "list", "prefix": "item:"})
    assert 0 < len(first["items"]) < len(keys) and first["next_after"] == first["items"][-1][0]
    assert await kv.list_settings("item:") == [(key, value) for key in keys]


async def test_key_and_value_limits(kv: SettingsClient):
    await kv.set_setting("k" * MAX_KEY_BYTES, "fits")
    assert await kv.get_setting("k" * MAX_KEY_BYTES) == "fits"
    with pytest.raises(WireError) as err:
        await kv.set_setting("k" * (MAX_KEY_BYTES + 1), "x")
    assert err.value.code == ErrorCode.TOO_LARGE and "512 bytes" in err.value.message
    with pytest.raises(WireError) as err:
        await kv.get_setting("é" * MAX_KEY_BYTES)
    assert err.value.code == ErrorCode.TOO_LARGE

    await kv.set_setting("big", "v" * MAX_VALUE_BYTES)
    assert await kv.get_setting("big") == "v" * MAX_VALUE_BYTES
    with pytest.raises(WireError) as err:
        await kv.set_setting("big", "v" * (MAX_VALUE_BYTES + 1))
    assert err.value.code == ErrorCode.TOO_LARGE and "64 KiB" in err.value.message
    assert await kv.get_setting("big") == "v" * MAX_VALUE_BYTES  # the refused write changed nothing

    with pytest.raises(WireError) as err:
        await kv.set_setting("", "x")
    assert err.value.code == ErrorCode.INVALID


async def test_a_legal_value_fits_on_the_wire_whatever_its_escaping(kv: SettingsClient):
    """64 KiB of control characters is six times longer in JSON; it still
    goes in, comes out and lists."""
    value = "\x01" * MAX_VALUE_BYTES
    await kv.set_setting("escaped", value)
    assert await kv.get_setting("escaped") == value
    assert await kv.list_settings("esc") == [("escaped", value)]


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"{not json", "bad_json"),
        (b"[1, 2]", "bad_json"),
        (b'{"v": 1, "op": "set", "key": "k", "value": "\xff\xfe"}', "bad_encoding"),
        (b'{"v": 1, "op": "set", "key": "k", "value": "\\ud800"}', "bad_encoding"),
        (b'{"v": 1, "op": "set", "key": "k", "value": "a\\u0000b"}', "invalid"),
        (b'{"v": 2, "op": "get", "key": "k"}', "bad_version"),
        (b'{"v": 1, "op": "explode"}', "unknown_op"),
        (b'{"v": 1, "key": "k"}', "unknown_op"),
        (b'{"v": 1, "op": "set", "key": "k", "value": 42}', "invalid"),
        (b'{"v": 1, "op": "set", "key": "k"}', "invalid"),
        (b'{"v": 1, "op": "get", "key": "k", "skill": "audiobooks"}', "invalid"),
        (b'{"v": 1, "op": "list", "prefix": null}', "invalid"),
    ],
)
async def test_bad_requests_get_the_error_envelope(nc, subjects, persona, kv, payload, code):
    reply = await raw(nc, subjects.storage_kv(persona, "timers"), payload)
    assert error_code(reply) == code, reply
    assert reply["error"]["message"]
    assert await kv.get_setting("k") is None  # nothing was written
    await kv.set_setting("still", "serving")


async def test_oversize_payload_is_refused(nc, subjects, persona):
    payload = json.dumps({"v": 1, "op": "set", "key": "k", "value": "v" * (600 * 1024)}).encode()
    reply = await raw(nc, subjects.storage_kv(persona, "timers"), payload)
    assert error_code(reply) == "too_large"


async def test_a_malformed_namespace_subject_is_refused(nc, site, persona):
    reply = await raw(nc, f"huxley.{site}.storage.kv.bad$persona.timers", {"v": 1, "op": "get", "key": "k"})
    assert error_code(reply) == "invalid" and "persona" in reply["error"]["message"]


async def test_namespaces_are_separate(nc, subjects, persona):
    timers = SettingsClient(nc, subjects, persona, "timers", deadline_s=0)
    books = SettingsClient(nc, subjects, persona, "audiobooks", deadline_s=0)
    other_home = SettingsClient(nc, subjects, f"{persona}x", "timers", deadline_s=0)
    await timers.set_setting("shared", "timers")
    await books.set_setting("shared", "books")
    await books.set_setting("book:1", "moby")
    assert await timers.get_setting("shared") == "timers"
    assert await books.get_setting("shared") == "books"
    assert await other_home.get_setting("shared") is None
    assert await timers.list_settings() == [("shared", "timers")]
    assert await timers.get_setting("book:1") is None
    await timers.delete_setting("book:1")
    await timers.delete_setting("shared")
    assert await books.list_settings() == [("book:1", "moby"), ("shared", "books")]


async def test_no_key_escapes_the_namespace_its_subject_names(nc, subjects, persona):
    """Keys that look like paths, SQL or other namespaces stay keys of the
    subject's skill: the other skill sees none of them."""
    timers = SettingsClient(nc, subjects, persona, "timers", deadline_s=0)
    books = SettingsClient(nc, subjects, persona, "audiobooks", deadline_s=0)
    await books.set_setting("position", "42")
    sneaky = [
        "audiobooks.position",
        "../audiobooks/position",
        f"{persona}.audiobooks.position",
        "position' OR '1'='1",
        "%",
        "_",
        "position\\",
    ]
    for key in sneaky:
        await timers.set_setting(key, "timers wrote this")
        assert await timers.get_setting(key) == "timers wrote this"
        await timers.delete_setting(key)
    assert await timers.get_setting("position") is None
    assert await timers.list_settings("%") == [] and await timers.list_settings("pos") == []
    assert await books.list_settings() == [("position", "42")]
