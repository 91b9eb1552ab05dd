"""The shipped rules make a coherent offline household (issue 14): the user's
requests call their tools, and what the skills say through inject_turn (their
real prompts, in every language they ship) is spoken, never answered with a
tool call: a fired timer's prompt no longer sets a new timer."""

from __future__ import annotations

import json

import pytest

from huxley_realtime_sim.rules import load_rules, match_text, render, render_arguments
from huxley_skill_audiobooks import skill as audiobooks
from huxley_skill_doorbell import skill as doorbell
from huxley_skill_reminders import skill as reminders
from huxley_skill_timers import skill as timers

TOOLS = {"get_current_time", "set_timer", "play_audiobook", "audiobook_control", "set_volume"}
BOOK = load_rules()


def skill_prompts() -> list[tuple[str, str]]:
    """(what it is, the prompt) for every prompt the household's skills inject."""
    found = []
    for lang, template in timers._DEFAULT_FIRE_PROMPTS.items():
        found.append((f"timer fired ({lang})", template.format(message="the timer for the pasta")))
    for lang, template in reminders._DEFAULT_FIRE_PROMPTS.items():
        found.append((f"reminder ({lang})", template.format(message="set a timer for the oven", kind="once")))
    for lang, text in audiobooks._DEFAULT_ON_COMPLETE_PROMPTS.items():
        found.append((f"book finished ({lang})", text))
    for lang, text in audiobooks._PATIENCE_EXPIRED_PROMPTS.items():
        found.append((f"book paused ({lang})", text))
    for lang, text in doorbell.DEFAULT_PROMPTS.items():
        found.append((f"doorbell ({lang})", text))
    return found


@pytest.mark.parametrize(("what", "prompt"), skill_prompts(), ids=[w for w, _ in skill_prompts()])
def test_a_skills_prompt_is_spoken_and_calls_no_tool(what: str, prompt: str) -> None:
    found = match_text(BOOK, prompt, TOOLS)
    steps = found.rule.steps if found.rule is not None else [BOOK.default]
    assert not any(step.tools for step in steps), (what, found.rule and found.rule.name)


def test_a_fired_timer_is_spoken_with_its_message() -> None:
    prompt = timers._DEFAULT_FIRE_PROMPTS["en"].format(message="10 seconds are up")
    found = match_text(BOOK, prompt, TOOLS)
    assert found.rule is not None and found.rule.name == "timer_fired"
    spoken = render(found.rule.steps[0].say or "", found.values)
    assert spoken == "Hey, your timer went off: 10 seconds are up."


@pytest.mark.parametrize(
    ("said", "rule", "tool"),
    [
        ("What time is it?", "time", "get_current_time"),
        ("Set a timer for 5 seconds", "timer", "set_timer"),
        ("play the book", "book", "play_audiobook"),
        ("stop the book", "stop", "audiobook_control"),
    ],
)
def test_the_users_requests_call_their_tools(said: str, rule: str, tool: str) -> None:
    found = match_text(BOOK, said, TOOLS)
    assert found.rule is not None and found.rule.name == rule
    assert [call.name for step in found.rule.steps for call in step.tools] == [tool]


def test_the_timer_the_simulator_sets_says_what_it_was() -> None:
    found = match_text(BOOK, "set a timer for 5 seconds", TOOLS)
    assert found.rule is not None
    arguments = json.loads(render_arguments(found.rule.steps[0].tools[0].arguments, found.values))
    assert arguments == {"seconds": 5, "message": "5 seconds are up"}
