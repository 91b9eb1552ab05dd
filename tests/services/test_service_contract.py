"""Every service, run as its own process against a real nats-server: it starts,
registers as a NATS micro service, answers health, answers bad input on EVERY
one of its request subjects with the error envelope — malformed JSON, a wrong
schema version (or a `v` that is not the integer 1), an unknown op, deep
nesting, huge integers, lone surrogates, a payload over the subject's size limit — and
keeps serving (same instance healthy, a valid request on each subject still
answered), then exits 0 on SIGTERM."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nats.errors
import pytest
from nats.aio.client import Client

from huxley_runtime.persona import load_persona
from huxley_runtime.rpc import gather_replies, request
from huxley_wire.codec import MAX_CONTROL_BYTES, Request
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages import audio, bridge, focus, skills, storage
from huxley_wire.messages.common import Health
from huxley_wire.subjects import Subjects
from support.services import REPO, ServiceProcess, wait_healthy
from support.waiting import until

PERSONAS = REPO / "personas"


@dataclass(frozen=True)
class Probe:
    """One request subject, its payload limit, and a valid request that must
    still be answered after the bad ones (None: only a skill's tool subject,
    checked with an unknown tool instead)."""

    subject: str
    limit: int = MAX_CONTROL_BYTES
    valid: Request[Any] | None = None


def storage_probes(s: Subjects, h: Health) -> list[Probe]:
    big, admin = storage.STORAGE_REQUEST_MAX_BYTES, storage.STORAGE_REPLY_MAX_BYTES
    return [
        Probe(s.storage_kv("basic", "timers"), big, storage.KvList()),
        Probe(s.storage_schema("basic", "timers"), valid=storage.SchemaGet()),
        Probe(s.storage_sessions("basic"), big, storage.SessionList()),
        Probe(s.storage_admin(), admin, storage.AdminExport(limit=1)),
    ]


def skill_host_probes(s: Subjects, h: Health) -> list[Probe]:
    holder = h.detail["holder"]
    probes = [
        Probe(s.skill_host_rpc(holder), valid=skills.DiscardEffect(effect_id="none")),
        Probe(s.skill_setup(holder, "system"), valid=skills.SetSkillEnabled(skill="system", enabled=True)),
    ]
    # Each skill has its own tool subject; with storage up, every skill of the
    # persona serves. `system` gets a real call afterwards.
    serving = [name for name, d in h.detail["skills"].items() if d["status"] in ("ok", "degraded")]
    assert sorted(serving) == sorted(PERSONA_SKILLS), h.detail
    for name in serving:
        call = skills.ToolCall(call_id="c1", tool="get_current_time", args={}) if name == "system" else None
        probes.append(Probe(s.skill_tool(name), valid=call))
    return probes


PERSONA_SKILLS = list(load_persona(PERSONAS / "basic.yaml").skills)

ProbesOf = Callable[[Subjects, Health], list[Probe]]


@dataclass(frozen=True)
class Case:
    module: str
    probes_of: ProbesOf
    helpers: tuple[str, ...] = ()  # modules started first (not under test)


SERVICES: dict[str, Case] = {
    "storage": Case("huxley_storage", storage_probes),
    "focus": Case(
        "huxley_focus",
        lambda s, h: [Probe(s.focus_rpc_of("bridge"), valid=focus.SnapshotRequest())],
    ),
    "realtime-bridge": Case(
        "huxley_bridge", lambda s, h: [Probe(s.bridge_rpc(), valid=bridge.BridgeSnapshotRequest())]
    ),
    # Storage, so the skills that keep state get set up and serve their tools.
    "skill-host": Case("huxley_skill_host", skill_host_probes, helpers=("huxley_storage",)),
    "audio-io": Case(
        "huxley_audio_io",
        lambda s, h: [Probe(s.audio_rpc(), valid=audio.AudioSnapshotRequest())],
    ),
}

BAD_PAYLOADS = {
    b"{this is not json": ErrorCode.BAD_JSON,
    b"": ErrorCode.BAD_JSON,
    b"[1, 2, 3]": ErrorCode.BAD_JSON,
    b'{"v": 1, "op": "snapshot", "s": "\xff\xfe"}': ErrorCode.BAD_ENCODING,
    b'{"v": 99, "op": "snapshot"}': ErrorCode.BAD_VERSION,
    b'{"op": "snapshot"}': ErrorCode.BAD_VERSION,
    b'{"v": 1, "op": "definitely_not_an_op"}': ErrorCode.UNKNOWN_OP,
    b'{"v": 1}': ErrorCode.UNKNOWN_OP,
    # The classes the chaos run turned into `internal` or silence (issue 13):
    # nesting past what Python's parser recurses, integers past its 4,300-digit
    # limit and past ours, lone surrogates (valid JSON, not Unicode), and `v`
    # values that equal 1 without being the integer 1.
    b'{"v": 1, "op": "snapshot", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}": ErrorCode.INVALID,
    b'{"v": 1, "op": "snapshot", "x": ' + b"[" * 100_000 + b"}": ErrorCode.INVALID,
    b'{"v": 1, "op": "snapshot", "x": ' + b"9" * 5000 + b"}": ErrorCode.INVALID,
    b'{"v": 1, "op": "snapshot", "x": ' + b"1" * 65 + b"}": ErrorCode.INVALID,
    b'{"v": 1, "op": "snapshot", "inject_id": "\\ud800"}': ErrorCode.BAD_ENCODING,
    b'{"v": 1, "op": "run_inject", "inject_id": "\\ud800", "prompt": "x"}': ErrorCode.BAD_ENCODING,
    b'{"v": 1, "op": "snapshot", "\\udfff": 1}': ErrorCode.BAD_ENCODING,
    b'{"v": true, "op": "snapshot"}': ErrorCode.BAD_VERSION,
    b'{"v": 1.0, "op": "snapshot"}': ErrorCode.BAD_VERSION,
    b'{"v": "1", "op": "snapshot"}': ErrorCode.BAD_VERSION,
    b'{"v": 1, "op": "' + b"x" * 70_000 + b'"}': ErrorCode.UNKNOWN_OP,
}


def oversize(size: int) -> bytes:
    """Well-formed JSON of exactly `size` bytes: only its size is wrong."""
    head, tail = b'{"v":1,"op":"snapshot","pad":"', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


async def error_code(nc: Client, subject: str, payload: bytes) -> str | None:
    reply = json.loads((await nc.request(subject, payload, timeout=5)).data)
    return reply.get("error", {}).get("code")


async def wait_skills_set_up(nc: Client, site: str, deadline_s: float = 30) -> Health:
    """Health once no skill is still starting (each registers its tool subject
    when its setup is done)."""

    async def set_up() -> Health | None:
        health = await wait_healthy(nc, site, "skill-host")
        statuses = {d["status"] for d in health.detail.get("skills", {}).values()}
        return health if statuses and "starting" not in statuses else None

    health: Health = await until(set_up, deadline_s, "every skill past 'starting'")
    return health


@pytest.mark.slow
@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_service_contract(service, nc, site, base_env, tmp_path):
    case = SERVICES[service]
    env = {**base_env, "HUXLEY_WEB_PORT": "0"}
    helpers = [ServiceProcess(m, env, tmp_path / f"{m}.log").start() for m in case.helpers]
    proc = ServiceProcess(case.module, env, tmp_path / f"{service}.log").start()
    try:
        health = await wait_healthy(nc, site, service)
        assert health.service == service and health.site == site

        pings = [json.loads(r) for r in await gather_replies(nc, f"$SRV.PING.huxley-{service}", b"")]
        assert any(p["metadata"].get("instance") == health.instance for p in pings), pings

        if service == "skill-host":
            health = await wait_skills_set_up(nc, site)
        probes = case.probes_of(Subjects(site), health)

        for probe in probes:
            for payload, code in BAD_PAYLOADS.items():
                got = await error_code(nc, probe.subject, payload)
                assert got == code, (probe.subject, payload, got, proc.output()[-2000:])
            too_big = probe.limit + 1
            if too_big <= nc.max_payload:
                got = await error_code(nc, probe.subject, oversize(too_big))
                assert got == ErrorCode.TOO_LARGE, (probe.subject, got)
            else:
                # The subject allows all the bus carries: the bus is the guard.
                with pytest.raises(nats.errors.MaxPayloadError):
                    await nc.request(probe.subject, oversize(too_big), timeout=5)

        again = await wait_healthy(nc, site, service, timeout_s=5)
        assert again.instance == health.instance
        for probe in probes:
            if probe.valid is not None:
                await request(nc, probe.subject, probe.valid, timeout=5)
            else:
                # Another skill's subject: a real call reaches the skill's dispatch.
                with pytest.raises(WireError) as refused:
                    call = skills.ToolCall(call_id="c2", tool="no_such_tool", args={})
                    await request(nc, probe.subject, call, timeout=5)
                assert refused.value.code == ErrorCode.UNKNOWN_TOOL, probe.subject
        assert proc.alive()

        assert await proc.terminate(timeout_s=15) == 0, proc.output()
    finally:
        proc.kill()
        for helper in helpers:
            helper.kill()
