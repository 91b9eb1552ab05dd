"""Every service, run as its own process against a real nats-server: it starts,
registers as a NATS micro service, answers health, answers malformed JSON, a
wrong schema version and an unknown op on each of its request subjects with
the error envelope (and keeps serving), and exits 0 on SIGTERM."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from huxley_runtime.rpc import gather_replies
from huxley_wire.messages.common import Health
from huxley_wire.subjects import Subjects
from support.services import ServiceProcess, wait_healthy

SubjectsOf = Callable[[Subjects, Health], list[str]]

SERVICES: dict[str, tuple[str, SubjectsOf]] = {
    "storage": (
        "huxley_storage",
        lambda s, h: [
            s.storage_kv("basic", "timers"),
            s.storage_schema("basic", "timers"),
            s.storage_sessions("basic"),
            s.storage_admin(),
        ],
    ),
    "focus": ("huxley_focus", lambda s, h: [s.focus_rpc()]),
    "realtime-bridge": ("huxley_bridge", lambda s, h: [s.bridge_rpc()]),
    "skill-host": ("huxley_skill_host", lambda s, h: [s.skill_host_rpc(h.instance)]),
    "audio-io": ("huxley_audio_io", lambda s, h: [s.audio_rpc()]),
}

BAD_PAYLOADS = {
    b"{this is not json": "bad_json",
    b'{"v": 99, "op": "snapshot"}': "bad_version",
    b'{"v": 1, "op": "definitely_not_an_op"}': "unknown_op",
}


@pytest.mark.slow
@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_service_contract(service, nc, site, base_env, tmp_path):
    module, subjects_of = SERVICES[service]
    proc = ServiceProcess(module, {**base_env, "HUXLEY_WEB_PORT": "0"}, tmp_path / f"{service}.log").start()
    try:
        health = await wait_healthy(nc, site, service)
        assert health.service == service and health.site == site

        pings = [json.loads(r) for r in await gather_replies(nc, f"$SRV.PING.huxley-{service}", b"")]
        assert any(p["metadata"].get("instance") == health.instance for p in pings), pings

        for subject in subjects_of(Subjects(site), health):
            for payload, code in BAD_PAYLOADS.items():
                reply = json.loads((await nc.request(subject, payload, timeout=5)).data)
                assert reply.get("error", {}).get("code") == code, (subject, payload, reply)
        again = await wait_healthy(nc, site, service, timeout_s=5)
        assert again.instance == health.instance
        assert proc.alive()

        assert await proc.terminate(timeout_s=15) == 0, proc.output()
    finally:
        proc.kill()
