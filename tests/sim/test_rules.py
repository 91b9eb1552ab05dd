"""The rule file: parsing, shorthand, matching and templates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from huxley_realtime_sim.rules import (
    RulesError,
    load_rules,
    match_marker,
    match_text,
    parse_rules,
    render,
    render_arguments,
)

BOOK = """
speed: 0
default: {say: "Sorry?"}
rules:
  - name: time
    text: ["what time", "the time"]
    marker: "1"
    transcript: "What time is it?"
    say: "One moment."
    tools: [{name: get_current_time}]
    then: "It is {output.time}."
  - name: timer
    regex: 'timer for (?P<seconds>\\d+)'
    tools: [{name: set_timer, arguments: {seconds: "{seconds}", message: "tea {seconds}"}}]
  - name: rogue
    text: "rogue"
    allow_undeclared_tools: true
    tools: [{name: no_such_tool, arguments: "{\\"x\\": 1}"}]
  - name: steps
    text: "steps"
    steps:
      - {tools: [{name: get_current_time}], delay_ms: 10}
      - {say: "first"}
"""

TOOLS = {"get_current_time", "set_timer"}


def test_shorthand_becomes_steps() -> None:
    book = parse_rules(BOOK)
    time_rule = book.rules[0]
    assert [s.say for s in time_rule.steps] == ["One moment.", "It is {output.time}."]
    assert time_rule.steps[0].tools[0].name == "get_current_time"
    assert time_rule.steps[0].tools[0].arguments == {}
    assert book.rules[3].steps[0].delay_ms == 10
    assert book.phrases() == {"Sorry?", "One moment.", "Done.", "first"}


def test_text_regex_and_marker_matching() -> None:
    book = parse_rules(BOOK)
    assert match_text(book, "Hey, WHAT TIME is it?", TOOLS).rule.name == "time"  # type: ignore[union-attr]
    found = match_text(book, "a timer for 30 please", TOOLS)
    assert found.rule is not None and found.rule.name == "timer"
    assert found.values["seconds"] == "30"
    assert match_text(book, "nothing matches this", TOOLS).rule is None
    heard = match_marker(book, "91", TOOLS)
    assert (
        heard.rule is not None and heard.rule.name == "time" and heard.values["input"] == "What time is it?"
    )
    assert match_marker(book, "9", TOOLS).rule is None


def test_rules_whose_tools_are_undeclared_are_skipped_unless_allowed() -> None:
    book = parse_rules(BOOK)
    assert match_text(book, "what time", set()).rule is None
    rogue = match_text(book, "rogue", set())
    assert rogue.rule is not None and rogue.rule.name == "rogue"


def test_templates_and_arguments() -> None:
    values = {"seconds": "30", "output": {"time": "10:42 AM", "n": 3}}
    assert render("It is {output.time} ({output.n}) {missing}.", values) == "It is 10:42 AM (3) ."
    args = render_arguments(
        {"seconds": "{seconds}", "message": "tea {seconds}", "list": ["{seconds}"]}, values
    )
    assert json.loads(args) == {"seconds": 30, "message": "tea 30", "list": [30]}
    assert render_arguments('{"raw": "{seconds}"}', values) == '{"raw": "30"}'


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("rules: [{name: x, text: a, sy: hi}]", "sy"),
        ("rules: [{name: x, regex: '(', say: hi}]", "regex"),
        ("rules: [{name: x, marker: '1x', say: hi}]", "DTMF"),
        ("rules: [{name: x, say: hi}]", "needs text, regex or marker"),
        ("speed: -1", "speed"),
        ("- a list", "mapping"),
        ("rules: [", "YAML"),
    ],
)
def test_bad_rule_files_say_what_is_wrong(text: str, complaint: str) -> None:
    with pytest.raises(RulesError, match=complaint):
        parse_rules(text, "test.yaml")


def test_default_rule_file_loads_and_covers_the_offline_stack(tmp_path: Path) -> None:
    book = load_rules()
    tools = {"get_current_time", "set_timer", "play_audiobook", "audiobook_control", "set_volume"}
    names = {
        text: (match_text(book, text, tools).rule or type("d", (), {"name": None})).name
        for text in ["What time is it?", "set a timer", "play the book", "Tell the user: tea", "hmm"]
    }
    assert names == {
        "What time is it?": "time",
        "set a timer": "timer",
        "play the book": "book",
        "Tell the user: tea": "injected",
        "hmm": None,
    }
    with pytest.raises(RulesError, match="can't read"):
        load_rules(tmp_path / "missing.yaml")
