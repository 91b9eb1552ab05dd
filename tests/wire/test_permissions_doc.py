"""`huxley_wire.permissions_doc.overlap`: where a permission subject meets a
documented subject pattern, the ground docs/protocol.md's who-may column
stands on."""

from __future__ import annotations

import pytest

from huxley_wire.permissions import Identity, Role, skill_identity
from huxley_wire.permissions_doc import overlap, who_may

PATTERN = "huxley.home.focus.rpc.<holder>"


@pytest.mark.parametrize(
    ("rule", "pattern", "values"),
    [
        ("huxley.home.focus.rpc.*", PATTERN, ("*",)),
        ("huxley.home.focus.rpc.bridge", PATTERN, ("bridge",)),
        ("huxley.home.>", PATTERN, ("*",)),
        ("huxley.home.focus.>", "huxley.home.focus.event.activity", ()),
        ("huxley.home.audio.out.bridge.*", "huxley.home.audio.out.<owner>.<stream>", ("bridge", "*")),
        ("huxley.home.storage.kv.*.bridge", "huxley.home.storage.kv.<persona>.<skill>", ("*", "bridge")),
        ("huxley.home.bridge.rpc", "huxley.home.bridge.rpc", ()),
    ],
)
def test_a_rule_that_meets_the_pattern_says_which_values_it_allows(rule, pattern, values):
    assert overlap(rule, pattern) == values


@pytest.mark.parametrize(
    ("rule", "pattern"),
    [
        ("huxley.home.focus.notify.*", PATTERN),  # another subject
        ("huxley.other.focus.rpc.*", PATTERN),  # another site
        ("huxley.home.focus.rpc.*.x", PATTERN),  # longer
        ("huxley.home.focus", PATTERN),  # shorter
        ("huxley.home.bridge.rpc.>", "huxley.home.bridge.rpc"),  # `>` needs one more token
    ],
)
def test_a_rule_that_misses_the_pattern_meets_nothing(rule, pattern):
    assert overlap(rule, pattern) is None


def test_a_denied_subscription_is_not_listed():
    observer = Identity(Role.OBSERVER, "home", "observer")
    listening = Identity(Role.OBSERVER, "home", "observer-mic", hear_mic=True)
    cell = who_may("huxley.<site>.audio.mic.assistant", [observer, listening])
    assert cell == "pub: —<br>sub: `observer-mic`"


def test_a_skill_is_listed_with_its_own_values_only():
    skill = skill_identity("home", "basic", ("timers", "radio"), "skill-media")
    cell = who_may("huxley.<site>.skills.tool.<skill>", [skill])
    assert cell == "pub: —<br>sub: `skill-media` (`timers` or `radio` only)"
