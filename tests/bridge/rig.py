"""Drive the pure turn coordinator: a clock, the commands it returned, and
shortcuts that play the other side (focus, audio-io, the model) by feeding
the events those would send. Nothing here stands in for our own code: the
coordinator under test is the real one."""

from __future__ import annotations

import base64
import json
from typing import Any

from huxley_bridge import commands as c
from huxley_bridge import events as e
from huxley_bridge.coordinator import CoordinatorConfig, TurnCoordinator
from huxley_wire.audio import BYTES_PER_MS
from huxley_wire.messages.skills import SideEffectWire, ToolReply

TOOLS = {
    "get_current_time": "system",
    "set_volume": "system",
    "set_timer": "timers",
    "play_audiobook": "audiobooks",
    "audiobook_control": "audiobooks",
    "call_home": "phone",
    "chime": "sounds",
}


def tone(ms: float, value: int = 1000) -> bytes:
    return value.to_bytes(2, "little", signed=True) * int(ms * BYTES_PER_MS / 2)


class Rig:
    def __init__(self, **config: Any) -> None:
        self.core = TurnCoordinator(CoordinatorConfig(**config))
        self.now = 100.0
        self.log: list[c.Command] = []
        self.activities = 0
        self.responses = 0

    # -- feeding ------------------------------------------------------------------------------
    def feed(self, event: e.Event, advance: float = 0.0) -> list[c.Command]:
        self.now += advance
        out = self.core.handle(event, self.now)
        self.log += out
        return out

    def tick(self, advance: float) -> list[c.Command]:
        return self.feed(e.Tick(), advance)

    def connect(self, tools: dict[str, str] | None = None) -> Rig:
        self.feed(e.ModelConnected())
        self.feed(e.ToolsChanged(TOOLS if tools is None else tools))
        return self

    # -- reading commands -------------------------------------------------------------------------
    @staticmethod
    def of[T](out: list[c.Command], kind: type[T]) -> list[T]:
        return [x for x in out if isinstance(x, kind)]

    def one[T](self, out: list[c.Command], kind: type[T]) -> T:
        found = self.of(out, kind)
        assert len(found) == 1, f"expected one {kind.__name__}, got {found}"
        return found[0]

    @staticmethod
    def sent(out: list[c.Command], type_: str | None = None) -> list[dict[str, Any]]:
        return [
            x.event for x in out if isinstance(x, c.SendModel) and (type_ is None or x.event["type"] == type_)
        ]

    @staticmethod
    def model_types(out: list[c.Command]) -> list[str]:
        return [x.event["type"] for x in out if isinstance(x, c.SendModel)]

    @staticmethod
    def audio(out: list[c.Command], stream: str | None = None) -> bytes:
        return b"".join(x.pcm for x in out if isinstance(x, c.PublishAudio) and stream in (None, x.stream_id))

    @staticmethod
    def turn_phases(out: list[c.Command]) -> list[str]:
        return [x.message.phase for x in out if isinstance(x, c.Publish) and x.kind == "turn"]  # type: ignore[attr-defined]

    @staticmethod
    def speaking(out: list[c.Command]) -> list[bool]:
        return [x.message.value for x in out if isinstance(x, c.Publish) and x.kind == "model_speaking"]  # type: ignore[attr-defined]

    @staticmethod
    def statuses(out: list[c.Command]) -> list[str]:
        return [x.message.message for x in out if isinstance(x, c.Publish) and x.kind == "status"]  # type: ignore[attr-defined]

    @staticmethod
    def outputs(out: list[c.Command]) -> list[tuple[str, Any]]:
        items = [x["item"] for x in Rig.sent(out, "conversation.item.create")]
        result = []
        for item in items:
            if item["type"] == "function_call_output":
                try:
                    result.append((item["call_id"], json.loads(item["output"])))
                except json.JSONDecodeError:
                    result.append((item["call_id"], item["output"]))
        return result

    # -- playing focus and audio-io ------------------------------------------------------------------
    def grant(self, out: list[c.Command]) -> str:
        """Answer the AcquireDialog in `out`; returns the activity id."""
        acquire = self.one(out, c.AcquireDialog)
        self.activities += 1
        activity = f"a{self.activities}"
        self.feed(e.DialogAcquired(acquire.turn_id, activity))
        return activity

    def press(self, press_id: str = "p1", at_us: int = 0) -> tuple[str, str]:
        """PTT down through focus's interrupt to listening; (turn_id, activity_id)."""
        out = self.feed(e.PttStart(press_id, at_us))
        token = self.one(out, c.Interrupt).token
        done = self.feed(e.InterruptDone(token))
        clear = self.one(done, c.ClearAudio)
        self.feed(e.AudioCleared(clear.token))
        activity = self.grant(done)
        return self.one(done, c.AcquireDialog).turn_id, activity

    def talk(self, ms: float = 400) -> None:
        for _ in range(int(ms // 20)):
            self.feed(e.MicAudio(tone(20)), advance=0.02)

    def release(self, press_id: str = "p1", at_us: int = 500_000) -> list[c.Command]:
        return self.feed(e.PttStop(press_id, at_us))

    def drain(self, activity: str, played_ms: float) -> list[c.Command]:
        return self.feed(e.Played(activity, played_ms, drained=True))

    # -- playing the model -------------------------------------------------------------------------------
    def respond(
        self,
        speech: list[tuple[str, bytes]] | None = None,
        calls: list[tuple[str, str, Any]] | None = None,
        status: str = "completed",
        done: bool = True,
    ) -> tuple[str, list[c.Command]]:
        """The model's next response: audio per item, then tool calls
        (call_id, name, args: a dict or a raw string)."""
        self.responses += 1
        rid = f"resp{self.responses}"
        out = self.feed(e.ResponseCreated(rid))
        for item_id, pcm in speech or []:
            out += self.feed(e.AudioDelta(rid, item_id, pcm))
        for call_id, name, args in calls or []:
            raw = args if isinstance(args, str) else json.dumps(args)
            out += self.feed(e.FunctionCall(rid, f"item-{call_id}", call_id, name, raw))
        if done:
            out += self.feed(e.ResponseDone(rid, status))
        return rid, out

    def tool_ok(
        self, call_id: str, output: Any = "ok", effect: SideEffectWire | None = None, skill: str = "s"
    ) -> list[c.Command]:
        text = output if isinstance(output, str) else json.dumps(output)
        reply = ToolReply(output=text, side_effect=effect, host="host-1", skill=skill)
        return self.feed(e.ToolDone(call_id, reply))


def b64(pcm: bytes) -> str:
    return base64.b64encode(pcm).decode()
