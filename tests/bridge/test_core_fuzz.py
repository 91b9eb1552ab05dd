"""Random interleavings of presses, injects, completions, tool replies, model
events, disconnects and time, against a world that answers like focus,
audio-io, the skill hosts and the model would (replies reordered, model
events in socket order). Whatever happens:

- the model never gets a second response.create while one is in progress;
- audio is only published on an activity the bridge holds;
- once the user lets go and everything is answered, no turn is stuck and no
  DIALOG activity stays held.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from huxley_bridge import commands as c
from huxley_bridge import events as e
from huxley_bridge.coordinator import CoordinatorConfig, TurnCoordinator
from huxley_wire.messages.focus import ActivityKind, Channel, EndReason, FocusState, InjectPriority
from huxley_wire.messages.skills import AudioStreamEffect, CancelMediaEffect, InputClaimEffect, ToolReply

from .rig import TOOLS, tone


class World:
    def __init__(self, data: st.DataObject) -> None:
        self.data = data
        self.core = TurnCoordinator(CoordinatorConfig(drain_grace_s=3.0))
        self.now = 0.0
        self.held: set[str] = set()  # bridge DIALOG activities focus believes exist
        # Focus is one actor: its replies and notices come in order (a tuple is delivered
        # whole: notices acked before the reply, D6). audio-io and skill replies: any order.
        self.focus: deque[e.Event | tuple[e.Event, ...]] = deque()
        self.replies: list[e.Event | tuple[e.Event, ...]] = []
        self.model: deque[e.Event] = deque()  # the socket, in order
        self.connected = False
        self.active = False  # a response in progress on the model side
        self.cancelled = False
        self.ids = 0
        self.press: str | None = None
        self.press_at = 0
        self.spoken: set[str] = set()
        self.fired: list[tuple[str, str]] = []  # (inject_id, activity) focus has fired

    def new_id(self, prefix: str) -> str:
        self.ids += 1
        return f"{prefix}{self.ids}"

    def feed(self, event: e.Event | tuple[e.Event, ...]) -> None:
        for one in event if isinstance(event, tuple) else (event,):
            for command in self.core.handle(one, self.now):
                self.react(command)

    def react(self, cmd: c.Command) -> None:
        match cmd:
            case c.Interrupt(token=token):
                outcome = self.data.draw(st.sampled_from(["plain", "plain", "ended_claim", "ignored"]))
                if outcome == "ignored":  # a claim younger than the grace: focus changes nothing
                    self.focus.append(e.InterruptDone(token, ignored=True))
                    return
                # Focus releases DIALOG (and content, claims); the holder's NONE notices
                # are acked before the reply (D6), so they arrive first, in order.
                notices = [
                    e.ActivityChanged(activity, Channel.DIALOG, FocusState.NONE, "bridge", ActivityKind.TURN)
                    for activity in sorted(self.held)
                ]
                self.held.clear()
                self.focus.append((*notices, e.InterruptDone(token, ended_claim=outcome == "ended_claim")))
            case c.AcquireDialog(turn_id=turn_id):
                if self.data.draw(st.integers(0, 9)) == 0:  # focus unreachable now and then
                    self.focus.append(e.DialogAcquireFailed(turn_id, "timeout"))
                    return
                activity = self.new_id("a")
                self.held.add(activity)
                self.focus.append(e.DialogAcquired(turn_id, activity))
            case c.ReleaseActivity(activity_id=activity):
                self.held.discard(activity)
            case c.EndTurn(turn_id=turn_id, activity_id=activity):
                self.held.discard(activity)
                self.focus.append(e.TurnEndDone(turn_id))
            case c.InjectReply(status="unavailable", inject_id=inject_id):
                # Focus takes the DIALOG back (a NONE, reason error) and re-queues the inject.
                activity = next(a for i, a in self.fired if i == inject_id)
                # Its next firing is a new activity (a later draw): this one is never retried.
                self.fired = [(i, a) for i, a in self.fired if i != inject_id]
                if activity in self.held:
                    self.held.discard(activity)
                    self.focus.append(
                        e.ActivityChanged(
                            activity,
                            Channel.DIALOG,
                            FocusState.NONE,
                            "bridge",
                            ActivityKind.TURN,
                            EndReason.ERROR,
                        )
                    )
            case c.ClearAudio(token=token):
                self.replies.append(e.AudioCleared(token))
            case c.CallTool(call_id=call_id):
                kind = self.data.draw(st.sampled_from(["plain", "stream", "claim", "cancel", "fail"]))
                if kind == "fail":
                    self.replies.append(e.ToolFailed(call_id, "timeout", "slow"))
                    return
                effect: Any = {
                    "plain": None,
                    "stream": AudioStreamEffect(effect_id=self.new_id("s")),
                    "claim": InputClaimEffect(effect_id=self.new_id("k")),
                    "cancel": CancelMediaEffect(),
                }[kind]
                self.replies.append(
                    e.ToolDone(call_id, ToolReply(output="ok", side_effect=effect, host="h", skill="x"))
                )
            case c.PublishAudio(stream_id=stream, eos=eos):
                assert stream in self.held, f"audio on {stream}, which the bridge does not hold"
                if eos:
                    self.replies.append(e.Played(stream, 1e9, drained=True))
            case c.SendModel(event=event) if self.connected:
                if event["type"] == "conversation.item.create" and event["item"]["type"] == "message":
                    prompt = event["item"]["content"][0]["text"]
                    assert prompt not in self.spoken, f"{prompt!r} spoken twice"
                    if prompt.startswith("inject "):
                        self.spoken.add(prompt)
                self.model_event(event)
            case _:
                pass

    def model_event(self, event: dict[str, Any]) -> None:
        if event["type"] == "response.create":
            assert not self.active, "response.create while a response is in progress"
            self.active, self.cancelled = True, False
            rid = self.new_id("r")
            self.model.append(e.ResponseCreated(rid))
            for _ in range(self.data.draw(st.integers(0, 3))):
                self.model.append(
                    e.AudioDelta(rid, "i" + rid, tone(self.data.draw(st.sampled_from([20, 70, 300]))))
                )
            for _ in range(self.data.draw(st.integers(0, 2))):
                name = self.data.draw(st.sampled_from([*TOOLS, "nope"]))
                args = self.data.draw(st.sampled_from(["{}", "{bad", "[]"]))
                self.model.append(e.FunctionCall(rid, self.new_id("f"), self.new_id("c"), name, args))
            self.model.append(e.ResponseDone(rid, "completed"))
        elif event["type"] == "response.cancel" and self.active:
            self.cancelled = True

    def deliver_model(self) -> None:
        event = self.model.popleft()
        if isinstance(event, e.ResponseDone):
            self.active = False
            if self.cancelled:
                event = e.ResponseDone(event.response_id, "cancelled")
        self.feed(event)

    def step(self) -> None:
        actions = ["reply", "model", "tick", "press", "mic", "inject", "completion", "drop"]
        action = self.data.draw(st.sampled_from(actions))
        if action == "reply" and (self.replies or self.focus):
            index = self.data.draw(st.integers(0, len(self.replies)))  # len: focus's next one
            if index == len(self.replies) and not self.focus:
                index -= 1
            self.feed(self.replies.pop(index) if index < len(self.replies) else self.focus.popleft())
        elif action == "model" and self.model:
            self.deliver_model()
        elif action == "tick":
            self.now += self.data.draw(st.sampled_from([0.01, 0.1, 1.0]))
            self.feed(e.Tick())
        elif action == "press":
            if self.press is None:
                self.press, self.press_at = self.new_id("p"), int(self.now * 1e6)
                self.feed(e.PttStart(self.press, self.press_at))
            else:
                self.let_go()
        elif action == "mic":
            self.feed(e.MicAudio(tone(20)))
        elif action == "inject":
            if self.fired and self.data.draw(st.booleans()):  # focus retries an earlier one
                inject_id, activity = self.data.draw(st.sampled_from(self.fired))
            else:
                inject_id, activity = self.new_id("inj"), self.new_id("a")
                self.held.add(activity)  # focus acquired DIALOG for the bridge before telling it
                self.fired.append((inject_id, activity))
            self.feed(e.RunInjectRequested(inject_id, f"inject {inject_id}", activity, InjectPriority.NORMAL))
        elif action == "completion":
            self.feed(e.CompletionRequested("more?", silence_ms=self.data.draw(st.sampled_from([0, 200]))))
        elif action == "drop":
            if self.connected:
                self.connected, self.active = False, False
                self.model.clear()
                self.feed(e.ModelDisconnected("fuzz"))
            else:
                self.connected = True
                self.feed(e.ModelConnected())

    def let_go(self) -> None:
        if self.press is not None:
            held_us = self.data.draw(st.sampled_from([50_000, 400_000]))
            self.feed(e.PttStop(self.press, self.press_at + held_us))
            self.press = None

    def settle(self) -> None:
        """Let go of the button and answer everything until the world is quiet."""
        self.let_go()
        for _ in range(500):
            if self.model:
                self.deliver_model()
            elif self.focus:
                self.feed(self.focus.popleft())
            elif self.replies:
                self.feed(self.replies.pop(0))
            else:
                self.now += 1.0
                self.feed(e.Tick())
                if self.core.turn is None and not self.replies and not self.focus and not self.model:
                    return


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_interleavings_keep_the_invariants(data: st.DataObject) -> None:
    world = World(data)
    world.connected = True
    world.feed(e.ModelConnected())
    world.feed(e.ToolsChanged(TOOLS))
    for _ in range(data.draw(st.integers(5, 60))):
        world.step()
    world.settle()
    assert world.core.turn is None, f"stuck turn: {world.core.snapshot()}"
    assert world.held == set(), f"DIALOG still held: {world.held}"
    assert not world.active or not world.connected


def test_the_world_itself_runs_a_plain_turn() -> None:
    """A sanity check of the harness: one press, one spoken reply."""

    @settings(max_examples=1, deadline=None)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        world = World(data)
        world.connected = True
        world.feed(e.ModelConnected())
        world.feed(e.PttStart("p", 0))
        world.press, world.press_at = "p", 0
        world.settle()
        assert world.core.turn is None and world.held == set()
        assert json.dumps(world.core.snapshot())

    run()
