"""The pure storage rules: limits, LIKE escaping, session resume, backup policy."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from huxley_storage import backup_policy
from huxley_storage.rules import check_key, check_prefix, check_text, like_prefix, should_resume
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages.storage import MAX_KEY_BYTES, MAX_VALUE_BYTES, SESSION_RESUME_S


def code_of(check, *args) -> ErrorCode | None:
    try:
        check(*args)
    except WireError as exc:
        return exc.code
    return None


def test_key_limits_count_utf8_bytes():
    assert code_of(check_key, "k" * MAX_KEY_BYTES) is None
    assert code_of(check_key, "k" * (MAX_KEY_BYTES + 1)) == ErrorCode.TOO_LARGE
    assert code_of(check_key, "ñ" * (MAX_KEY_BYTES // 2)) is None  # 2 bytes each
    assert code_of(check_key, "ñ" * (MAX_KEY_BYTES // 2) + "x") == ErrorCode.TOO_LARGE
    assert code_of(check_key, "") == ErrorCode.INVALID


def test_value_limits_count_utf8_bytes():
    assert code_of(check_text, "") is None
    assert code_of(check_text, "v" * MAX_VALUE_BYTES) is None
    assert code_of(check_text, "v" * (MAX_VALUE_BYTES + 1)) == ErrorCode.TOO_LARGE
    assert code_of(check_text, "€" * (MAX_VALUE_BYTES // 3 + 1)) == ErrorCode.TOO_LARGE


def test_too_large_message_names_the_limit():
    with pytest.raises(WireError) as err:
        check_text("v" * (MAX_VALUE_BYTES + 1))
    assert "65537 bytes" in err.value.message and "65536" in err.value.message


def test_lone_surrogates_and_nul_are_refused():
    assert code_of(check_key, "bad\ud800") == ErrorCode.BAD_ENCODING
    assert code_of(check_text, "\udfff") == ErrorCode.BAD_ENCODING
    assert code_of(check_text, "a\x00b") == ErrorCode.INVALID
    assert code_of(check_prefix, "\ud800") == ErrorCode.BAD_ENCODING
    assert code_of(check_prefix, "") is None


def like_to_regex(pattern: str) -> re.Pattern[str]:
    """What LIKE ... ESCAPE '\\' means, as a regular expression."""
    out, chars = [], iter(pattern)
    for ch in chars:
        if ch == "\\":
            out.append(re.escape(next(chars)))
        elif ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


@given(
    st.text(alphabet=st.sampled_from("ab%_\\xé"), max_size=8),
    st.text(alphabet=st.sampled_from("ab%_\\xé"), max_size=10),
)
def test_like_prefix_matches_exactly_the_keys_that_start_with_the_prefix(prefix, key):
    assert bool(like_to_regex(like_prefix(prefix)).fullmatch(key)) == key.startswith(prefix)


def test_like_prefix_escapes_wildcards():
    assert like_prefix("a%b_c\\") == "a\\%b\\_c\\\\%"
    assert like_prefix("") == "%"


def test_resume_within_thirty_minutes():
    now = 1_800_000_000.0
    assert should_resume(now - 10, now)
    assert should_resume(now - SESSION_RESUME_S, now)
    assert not should_resume(now - SESSION_RESUME_S - 1, now)
    assert not should_resume(None, now)
    assert should_resume(now + 5, now)  # a clock that stepped back


def test_backup_names_round_trip():
    day = date(2026, 11, 22)
    assert backup_policy.backup_name(day) == "huxley-2026-11-22.db"
    assert backup_policy.backup_day("huxley-2026-11-22.db") == day
    for other in ("huxley-2026-11-22.db.partial", "huxley-tomorrow.db", "notes.txt", "huxley.db"):
        assert backup_policy.backup_day(other) is None


def test_backup_due_once_a_day():
    today = date(2026, 11, 22)
    assert backup_policy.backup_due([], today)
    assert backup_policy.backup_due([today - timedelta(days=1)], today)
    assert not backup_policy.backup_due([today], today)


def test_retention_keeps_the_newest_seven():
    today = date(2026, 11, 22)
    days = [today - timedelta(days=n) for n in range(10)]
    assert backup_policy.expired(days, keep=7) == sorted(days[7:])
    assert backup_policy.expired(days[:7], keep=7) == []
    # Off for a month: the last week of backups stays, whatever their age.
    old = [today - timedelta(days=40 + n) for n in range(8)]
    assert backup_policy.expired(old, keep=7) == [min(old)]
