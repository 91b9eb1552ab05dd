"""Our doorbell skill in a real skill-host: a ring from the web client
(client.event) is counted in storage, echoed to the client and announced
through focus."""

from __future__ import annotations

import json

from huxley_runtime.storage_client import SettingsClient
from huxley_skill_host.service import SkillHostService
from huxley_wire.codec import encode
from huxley_wire.messages.skills import ClientEvent
from huxley_wire.subjects import Subjects
from skills.bus import Watch, call_tool, eventually
from support.services import running


async def test_a_ring_from_the_web_client_is_announced(nc, site, storage, bridge, host_settings):
    subjects = Subjects(site)
    server_events = await Watch().start(nc, subjects.server_event())
    async with running(SkillHostService, host_settings("doorbell")) as host:
        await eventually(lambda: host.slots["doorbell"].serving and host.focus.lease_ok)
        await nc.publish(
            subjects.client_events(), encode(ClientEvent(event="doorbell.ring", data={"who": "Ana"}))
        )
        run = await bridge.run_injects.wait_for(lambda r: "door" in r.prompt)
        assert run.priority == "block_behind_comms" and "Ana" in run.prompt
        echoed = await server_events.wait_for(lambda m: m["event"] == "doorbell.rang")
        assert echoed["data"] == {"visits": 1, "who": "Ana"} and echoed["skill"] == "doorbell"
        kv = SettingsClient(nc, subjects, "basic", "doorbell")
        assert await kv.get_setting("visit_count") == "1"
        visits = json.loads((await call_tool(nc, site, "doorbell", "doorbell_visits"))["output"])
        assert visits["visits"] == 1
