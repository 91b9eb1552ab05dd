"""The bridge's readiness and its persona, over the real bus with focus, a
skill-host and the simulator: an inject made while the model is down waits
in focus's queue and is spoken exactly once when the model is back; a
`run_inject` that reaches a bridge without a model is answered
`unavailable`; `set_persona` opens a fresh session for the persona the
client picked, or says why not; health says offline mode plainly."""

from __future__ import annotations

import shutil
from pathlib import Path

from nats.aio.client import Client

from huxley_bridge.service import BridgeService
from huxley_bridge.settings import BridgeSettings
from huxley_focus.service import FocusService
from huxley_focus.settings import FocusSettings
from huxley_runtime.rpc import request
from huxley_runtime.settings import HuxleySettings
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages import audio as am
from huxley_wire.messages import bridge as bm
from huxley_wire.messages import focus as fm
from huxley_wire.messages.common import HealthRequest
from huxley_wire.subjects import Subjects
from support.services import running
from support.waiting import until

from .stack import Heard, Stack, settings_of, stack_of

PROMPT = "Tell the user: the tea is ready"
REPO_PERSONAS = Path(__file__).resolve().parents[2] / "personas"
NOVA = """
version: 1
name: nova
voice: verse
language_code: en
transcription_language: en
timezone: Europe/London
system_prompt: You are Nova, a calm voice for the workshop.
skills:
  lathe: {}
"""


async def focus_bridge_state(s: Stack) -> str:
    health = await request(s.nc, s.subjects.health("focus"), HealthRequest())
    return str(health.detail.get("bridge", ""))


async def wait_bridge_state(s: Stack, start: str) -> None:
    async def there() -> bool:
        return (await focus_bridge_state(s)).startswith(start)

    await until(there, 10, f"focus to see the bridge {start}")


def spoken(s: Stack, text: str) -> int:
    """How often the model was given this text as a user message."""
    return sum(
        1
        for ev in s.sim.received
        if ev.get("type") == "conversation.item.create"
        and ev["item"].get("type") == "message"
        and any(part.get("text") == text for part in ev["item"].get("content", []))
    )


async def renews_pass(s: Stack, count: int, within_s: float = 10) -> None:
    """Let the bridge renew its lease `count` times more (focus's holder deadline moves)."""
    seen: list[float] = []

    async def moved() -> bool:
        snap = await request(s.nc, s.subjects.focus_rpc_of("bridge"), fm.SnapshotRequest())
        deadline = snap.holders.get("bridge")
        if deadline is not None and (not seen or deadline != seen[-1]):
            seen.append(deadline)
        return len(seen) > count

    await until(moved, within_s, f"{count} lease renews of the bridge")


async def test_an_inject_while_the_model_is_down_waits_and_is_spoken_once_when_it_is_back(
    nc: Client, settings: HuxleySettings, tmp_path: Path
) -> None:
    # A long backoff: the model stays down until the client's wake_word.
    async with stack_of(nc, settings, tmp_path, reconnect_delays_s=(600.0,)) as s:
        injects = await Heard.on(nc, s.subjects.focus_event("inject"), fm.InjectEvent)
        lines = await Heard.on(nc, s.subjects.bridge_event("transcript"), bm.TranscriptEvent)
        await wait_bridge_state(s, "renewing")
        assert s.sim.drop_all() == 1
        await wait_bridge_state(s, "not ready")

        # A run_inject that reaches the bridge anyway (a race with its renew) is not taken.
        with_no_model = bm.RunInject(
            inject_id="inj-race", prompt=PROMPT, activity_id="a-race", priority=fm.InjectPriority.NORMAL
        )
        try:
            await request(nc, s.subjects.bridge_inject(), with_no_model)
        except WireError as exc:
            assert exc.code == ErrorCode.UNAVAILABLE
        else:
            raise AssertionError("run_inject without a model was accepted")

        reply = await request(
            nc, s.subjects.focus_rpc_of("bridge"), fm.Inject(inject_id="inj-tea", prompt=PROMPT)
        )
        assert reply.status == "queued"
        # Focus hears "not ready" again with the next renew and keeps the inject (a
        # bridge holding nothing renews every 10 s: FOCUS-14).
        await renews_pass(s, 1, within_s=30)
        snap = await request(nc, s.subjects.focus_rpc_of("bridge"), fm.SnapshotRequest())
        assert [q.inject_id for q in snap.queue] == ["inj-tea"] and snap.current_inject is None
        assert spoken(s, PROMPT) == 0
        assert not [i for i in injects.items if i.inject_id == "inj-tea" and i.status in ("fired", "done")]

        # The model comes back: the inject fires, is spoken once and is done.
        wake = am.ClientControl(action="wake_word", client_id="test")
        await s.publish(s.subjects.audio_event("control"), wake)
        await s.sim.wait_connections(2)
        await injects.wait_for(lambda i: i.inject_id == "inj-tea" and i.status == "done", timeout=20)
        assert spoken(s, PROMPT) == 1
        heard = await lines.wait_for(lambda line: line.role == "assistant")
        assert heard.text and heard.item_id  # the spoken reply, as heard
        assert [i.status for i in injects.items if i.inject_id == "inj-tea"].count("fired") == 1


async def test_set_persona_opens_a_fresh_session_with_that_persona_or_says_why_not(
    nc: Client, settings: HuxleySettings, tmp_path: Path
) -> None:
    personas = tmp_path / "personas"
    personas.mkdir()
    shutil.copy(REPO_PERSONAS / "basic.yaml", personas / "basic.yaml")
    (personas / "nova.yaml").write_text(NOVA)
    async with stack_of(nc, settings.model_copy(update={"personas_dir": personas}), tmp_path) as s:
        statuses = await Heard.on(nc, s.subjects.bridge_event("status"), bm.StatusEvent)
        control = s.subjects.audio_event("control")

        await s.publish(control, am.ClientControl(action="set_persona", persona="ghost", client_id="c1"))
        refused = await statuses.wait_for(lambda st: "ghost" in st.message)
        assert "Staying on 'basic'" in refused.message
        assert len(s.sim.connections) == 1  # the session goes on

        await s.publish(control, am.ClientControl(action="set_persona", persona="nova", client_id="c1"))
        switched = await statuses.wait_for(lambda st: "Switched to persona 'nova'" in st.message)
        assert "lathe" in switched.message and "not served on this site" in switched.message
        await s.sim.wait_connections(2)  # a fresh model session

        async def nova_session() -> bool:
            updates = [ev for ev in s.sim.received if ev.get("type") == "session.update"]
            return any("You are Nova" in u["session"].get("instructions", "") for u in updates)

        await until(nova_session, 10, "a session.update with nova's instructions")
        update = next(
            ev
            for ev in s.sim.received
            if ev.get("type") == "session.update" and "You are Nova" in ev["session"].get("instructions", "")
        )
        assert update["session"]["audio"]["output"]["voice"] == "verse"
        assert "Huxley" not in update["session"]["instructions"]
        assert update["session"]["tools"] == []  # basic's skill-host does not serve nova
        assert (await s.snapshot()).tools == []


async def test_health_says_offline_mode_plainly(nc: Client, settings: HuxleySettings, tmp_path: Path) -> None:
    # Without a key, talking to the simulator: offline mode, simulated, connected.
    async with stack_of(nc, settings, tmp_path, openai_api_key=None) as s:

        async def up() -> bool:
            return s.bridge.health()[1]["connected"] is True

        await until(up, 10, "the session with the simulator")
        status, detail = s.bridge.health()
        assert status == "ok"
        assert detail["offline"] is True and detail["simulated"] is True and detail["connected"] is True
        assert detail["mode"] == "offline (simulator)" and "simulator" in detail["message"]
        snap = await s.snapshot()
        assert snap.offline and snap.simulated and snap.connected
    # Without a key or a simulator: offline mode, no voice at all.
    bare = settings_of(BridgeSettings, settings, openai_api_key=None, realtime_url=None)
    async with (
        running(FocusService, settings_of(FocusSettings, settings)),
        running(BridgeService, bare) as service,
    ):
        status, detail = service.health()
        assert status == "ok" and detail["offline"] is True and detail["simulated"] is False
        assert detail["mode"] == "offline (no voice)"
        snap = await request(nc, Subjects(settings.site).bridge_rpc(), bm.BridgeSnapshotRequest())
        assert snap.offline and not snap.simulated and not snap.connected
