"""An inject from a skill-host reaches focus promptly after focus restarts,
with an observer on `huxley.>` (issue 13: the observer turned each attempt of
the inject path into a 5 s timeout). Real focus, a real host, the test
playing the bridge; the observer itself counts the attempts."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from nats.aio.msg import Msg

from huxley_focus.service import FocusService
from huxley_focus.settings import FocusSettings
from huxley_runtime.bus import settle
from huxley_runtime.retry import FOREVER
from huxley_runtime.settings import HuxleySettings
from huxley_skill_host.service import SkillHostService
from huxley_skill_host.settings import SkillHostSettings
from huxley_wire.subjects import Subjects
from skills.bus import BridgeStandIn, call_tool
from support.services import running
from support.waiting import until

PROMPT = "Tell the user: nag"


async def test_an_inject_reaches_a_restarted_focus_promptly_with_an_observer(
    nc, site: str, settings: HuxleySettings, host_settings: Callable[..., SkillHostSettings]
) -> None:
    subjects = Subjects(site)
    injects: list[dict[str, Any]] = []  # every inject request focus.rpc was sent

    async def observe(msg: Msg) -> None:  # `huxley tap`: sees everything, answers nothing
        if msg.subject.startswith(subjects.focus_rpc_all()[:-1]):
            body = json.loads(msg.data)
            if body.get("op") == "inject":
                injects.append(body)

    observer = await nc.subscribe(subjects.everything, cb=observe)
    await settle(nc)
    focus_settings = FocusSettings(**dict(settings), _env_file=None)  # type: ignore[call-arg]
    try:
        async with running(SkillHostService, host_settings("nagger", inject_handoff_s=0.3)) as host:
            async with running(FocusService, focus_settings):
                await until(lambda: host.slots["nagger"].serving and host.focus.lease_ok, what="the host")
            # Focus is gone (restarting).
            assert (await call_tool(nc, site, "nagger", "nag"))["output"] == "nagged"
            # Each attempt meets the observer alone and times out; a failure
            # bound from the policy (with 5 s attempts, three take >= 10 s).
            bound = 3 * FOREVER.recovery_bound_s + 2.0
            await until(lambda: len(injects) >= 3, bound, "three inject attempts while focus is down")
            assert len({i["inject_id"] for i in injects}) == 1  # one inject, retried with its id

            async with running(FocusService, focus_settings):
                before = len(injects)
                bridge = await BridgeStandIn(nc, site).start()
                try:
                    run = await bridge.run_injects.wait_for(lambda r: r.prompt == PROMPT, timeout=20)
                    assert run.inject_id == injects[0]["inject_id"]
                    # Reached with the attempt in flight when focus came back, or the next.
                    assert len(injects) - before <= 2
                    await bridge.focus.turn_end(run.activity_id, inject_id=run.inject_id)
                finally:
                    await bridge.stop()
    finally:
        await observer.unsubscribe()
