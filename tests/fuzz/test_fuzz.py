"""Fuzz in CI (issue 13 item 7): hypothesis-drawn malformed and wrong-typed
requests on every request subject of the running stack, and junk client
messages on audio-io's gateway WebSocket.

One stack for the module (nats-server, the five services under `huxley
up`'s supervisor, the simulator as the model). For every payload: a reply
within the timeout (no hang), the error envelope with a specific code —
never `internal` — unless the request model itself accepts the payload;
afterwards every service is still the same instance (no restart) and a
valid request on each subject is answered. Example counts are bounded so
the module runs in about two minutes."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import nats.errors
import pytest
from hypothesis import strategies as st
from nats.aio.client import Client
from websockets.asyncio.client import ClientConnection, connect

from bench.chaos.stack import PERSONA, SERVICES, SKILLS, ChaosStack
from fuzz.payloads import JSON, by_subject_kind, draw, locally_valid, malformed, requests_of, wrong_types
from huxley_runtime.rpc import request
from huxley_wire.codec import Request
from huxley_wire.messages import audio, bridge, focus, skills, storage
from huxley_wire.subjects import Subjects

pytestmark = pytest.mark.slow

MALFORMED_PER_SUBJECT = 24
WRONG_TYPES_PER_SUBJECT = 40
REPLY_TIMEOUT_S = 5.0
TIME_CALL = skills.ToolCall(call_id="ok", tool="get_current_time", args={})


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ChaosStack]:
    async with ChaosStack(tmp_path_factory.mktemp("fuzz"), site="fuzz") as started:
        await started.wait_ready()
        yield started


async def instances(stack: ChaosStack) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for service in SERVICES:
        health = await stack.health(service, timeout=3.0)
        found[service] = health.instance if health is not None else None
    return found


def subjects_of(s: Subjects, host: str) -> dict[str, tuple[str, Request[Any] | None]]:
    """subject kind -> (subject, a valid request that must still be answered)."""
    return {
        "storage.kv": (s.storage_kv(PERSONA, "fuzz"), storage.KvList()),
        "storage.schema": (s.storage_schema(PERSONA, "fuzz"), storage.SchemaGet()),
        "storage.sessions": (s.storage_sessions(PERSONA), storage.SessionList()),
        "storage.admin": (s.storage_admin(), storage.AdminExport(limit=1)),
        "focus.rpc": (s.focus_rpc_of("bridge"), focus.SnapshotRequest()),
        "focus.notify": (s.focus_notify("bridge"), None),
        "bridge.rpc": (s.bridge_rpc(), bridge.BridgeSnapshotRequest()),
        "bridge.inject": (s.bridge_inject(), None),  # a valid one would run a turn
        "skills.tool": (
            s.skill_tool("system"),
            skills.ToolCall(call_id="ok", tool="get_current_time", args={}),
        ),
        "skills.host": (s.skill_host_rpc(host), skills.DiscardEffect(effect_id="none")),
        "skills.setup": (s.skill_setup(host, "system"), skills.SetSkillEnabled(skill="system", enabled=True)),
        "audio.rpc": (s.audio_rpc(), audio.AudioSnapshotRequest()),
    }


async def ask(nc: Client, subject: str, payload: bytes) -> dict[str, Any] | str:
    """The reply as an object, or what went wrong as text."""
    try:
        reply = await nc.request(subject, payload, timeout=REPLY_TIMEOUT_S)
    except nats.errors.TimeoutError:
        return f"no reply within {REPLY_TIMEOUT_S} s (hang)"
    except nats.errors.NoRespondersError:
        return "no responders (the service is gone)"
    try:
        body = json.loads(reply.data)
    except ValueError:
        return f"reply is not JSON: {reply.data[:200]!r}"
    return body if isinstance(body, dict) else f"reply is not an object: {body!r:.200}"


def judge(body: dict[str, Any] | str, may_succeed: bool) -> str | None:
    if isinstance(body, str):
        return body
    error = body.get("error")
    if error is None:
        return None if may_succeed else f"answered as valid: {json.dumps(body)[:200]}"
    if not isinstance(error, dict) or not isinstance(error.get("code"), str):
        return f"not the error envelope: {json.dumps(body)[:200]}"
    if error["code"] == "internal":
        return f"internal: {error.get('message', '')[:200]}"
    return None


def _short(payload: bytes) -> str:
    return payload[:120].decode(errors="replace") + (
        f"... ({len(payload)} bytes)" if len(payload) > 120 else ""
    )


async def test_every_request_subject_survives_fuzz(stack: ChaosStack) -> None:
    nc = stack.nc
    before = await instances(stack)
    health = await stack.health("skill-host")
    assert health is not None
    host = str(health.detail["holder"])  # skills.host.<holder>: the host's identity name
    models = by_subject_kind()
    targets = subjects_of(stack.subjects, host)
    assert set(targets) == set(models)
    failures: list[str] = []
    for kind, (subject, _) in targets.items():
        ops = [m.op for m in models[kind]]
        for payload in draw(malformed(ops, nc.max_payload), MALFORMED_PER_SUBJECT):
            near_max = len(payload) > 100_000 and b'"pad"' in payload[:60]
            problem = judge(await ask(nc, subject, payload), may_succeed=near_max)
            if problem:
                failures.append(f"{kind} {_short(payload)}: {problem}")
        for obj in draw(wrong_types(models[kind]), WRONG_TYPES_PER_SUBJECT):
            payload = json.dumps(obj).encode()
            problem = judge(await ask(nc, subject, payload), may_succeed=locally_valid(models[kind], obj))
            if problem:
                failures.append(f"{kind} {_short(payload)}: {problem}")

    after = await instances(stack)
    assert after == before, f"a service restarted: {before} -> {after}"
    for subject, valid in targets.values():
        if valid is not None:
            await request(nc, subject, valid, timeout=REPLY_TIMEOUT_S)
    assert await stack.healthy("skill-host"), f"skills no longer all serving ({SKILLS})"
    assert not failures, f"{len(failures)} bad answers:\n" + "\n".join(failures[:25])


# -- the gateway's client messages ----------------------------------------------------------------
CLIENT_TYPES = [
    "audio", "ptt_start", "ptt_stop", "wake_word", "reset", "set_language", "client_event",
    "list_sessions", "get_session", "delete_session", "no_such_type",
]  # fmt: skip


@st.composite
def client_junk(draw_: st.DrawFn) -> str:
    kind = draw_(st.sampled_from(["fields", "deep", "bigint", "surrogate", "near_max", "junk", "audio"]))
    kind_of = draw_(st.sampled_from(CLIENT_TYPES))
    if kind == "fields":
        fields = draw_(
            st.dictionaries(st.sampled_from(["data", "event", "language", "session_id", "id"]), JSON)
        )
        return json.dumps({"type": kind_of, **fields})
    if kind == "deep":
        depth = draw_(st.integers(65, 20_000))
        return f'{{"type": "{kind_of}", "data": ' + "[" * depth + "]" * depth + "}"
    if kind == "bigint":
        return f'{{"type": "{kind_of}", "session_id": ' + "9" * draw_(st.integers(65, 20_000)) + "}"
    if kind == "surrogate":
        code = draw_(st.integers(0xD800, 0xDFFF))
        return f'{{"type": "client_event", "event": "\\u{code:04x}", "data": {{"\\u{code:04x}": 1}}}}'
    if kind == "near_max":
        size = 256 * 1024 - draw_(st.integers(200, 2000))
        return json.dumps({"type": kind_of, "pad": "p" * size})
    if kind == "audio":
        raw = draw_(st.binary(max_size=64))
        data = draw_(st.sampled_from([base64.b64encode(raw).decode(), "not base64!", "", "A" * 7]))
        return json.dumps({"type": "audio", "data": data})
    return json.dumps(draw_(JSON))


async def answered(ws: ClientConnection, kind: str, timeout: float = 5.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        async for raw in ws:
            message: dict[str, Any] = json.loads(raw)
            if message.get("type") == kind:
                return message
    raise AssertionError(f"the connection closed before a {kind}")


async def test_gateway_client_messages_survive_fuzz(stack: ChaosStack) -> None:
    before = await instances(stack)
    messages = draw(client_junk(), 150)
    async with connect(stack.ws_url, max_size=2**22) as ws:
        for message in messages:
            await ws.send(message)
        # Still the same connection, and a valid request is answered.
        await ws.send(json.dumps({"type": "list_sessions"}))
        reply = await answered(ws, "sessions_list", timeout=10.0)
        assert isinstance(reply.get("sessions"), list)
    assert await instances(stack) == before
    health = await stack.health("audio-io")
    assert health is not None and health.status == "ok"
    assert health.detail.get("malformed", 0) > 0  # the junk was seen, and counted


def test_payloads_cover_every_request_model() -> None:
    """Every request model of every service is fuzzed on some subject."""
    covered = {m for models in by_subject_kind().values() for m in models}
    every = {m for module in (audio, bridge, focus, skills, storage) for m in requests_of(module)}
    assert covered == every, every - covered
