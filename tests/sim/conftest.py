from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from openai import AsyncOpenAI

from huxley_realtime_sim import SimServer, parse_rules
from huxley_realtime_sim.voice import ToneVoice

TEST_RULES = """
speed: 0
chunk_ms: 100
default: {say: "I heard you."}
follow_up: {say: "Done."}
rules:
  - name: time
    text: ["what time"]
    marker: "1"
    transcript: "What time is it?"
    say: "One moment."
    tools: [{name: get_current_time}]
    then: "It is {output.time}."
  - name: long
    text: ["tell me a long story"]
    say: "once upon a time there was a very long story that went on and on and on"
    speed: 1.0
  - name: hold
    text: ["hold on"]
    say: "holding"
    hold: true
  - name: two_tools
    text: ["two tools"]
    tools: [{name: get_current_time}, {name: set_timer, arguments: {seconds: 5, message: tea}}]
  - name: rogue
    text: ["rogue"]
    allow_undeclared_tools: true
    tools: [{name: no_such_tool}]
"""

TOOLS = [
    {
        "type": "function",
        "name": "get_current_time",
        "description": "The time",
        "parameters": {"type": "object"},
    },
    {"type": "function", "name": "set_timer", "description": "A timer", "parameters": {"type": "object"}},
]


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    # The HTTP controls are off by default; these tests use them.
    async with SimServer(parse_rules(TEST_RULES), voice=ToneVoice(), http_controls=True) as server:
        yield server


@pytest.fixture
def client(sim: SimServer) -> AsyncOpenAI:
    return AsyncOpenAI(api_key="sk-sim-test", websocket_base_url=sim.url)
