"""focus's saved document and the core's records carry the same fields, so a
restart restores each activity and queued inject exactly as it was."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from huxley_focus.arbiter import Activity
from huxley_focus.injects import InjectEntry
from huxley_focus.persist import _load_activity, _load_entry, _save_activity, _save_entry
from huxley_focus.state import SavedActivity, SavedInject
from huxley_wire.messages.focus import ActivityMeta, Channel, ContentType, FocusState, InjectPriority


def test_saved_models_name_every_field_of_the_records() -> None:
    assert [f.name for f in dataclasses.fields(Activity)] == list(SavedActivity.model_fields)
    assert [f.name for f in dataclasses.fields(InjectEntry)] == list(SavedInject.model_fields)


text = st.text(alphabet="abcdefghij-_0123456789", min_size=1, max_size=12)
times = st.floats(min_value=0, max_value=4e9, allow_nan=False)


@given(
    channel=st.sampled_from(list(Channel)),
    content_type=st.sampled_from(list(ContentType)),
    state=st.none() | st.sampled_from(list(FocusState)),
    patience_ms=st.integers(0, 600_000),
    acquired_at=times,
    deadline=st.none() | times,
    granted=st.none() | times,
    flags=st.tuples(st.booleans(), st.booleans()),
    ids=st.tuples(text, text, text),
)
def test_an_activity_round_trips(
    channel: Channel,
    content_type: ContentType,
    state: FocusState | None,
    patience_ms: int,
    acquired_at: float,
    deadline: float | None,
    granted: float | None,
    flags: tuple[bool, bool],
    ids: tuple[str, str, str],
) -> None:
    activity = Activity(
        activity_id=ids[0],
        channel=channel,
        interface=ids[1],
        holder=ids[2],
        content_type=content_type,
        patience_ms=patience_ms,
        meta=ActivityMeta(),
        acquired_at=acquired_at,
        state=state,
        patience_deadline=deadline,
        granted_at=granted,
        announced=flags[0],
        parked=flags[1],
    )
    saved = SavedActivity.model_validate_json(_save_activity(activity).model_dump_json())
    assert _load_activity(saved) == activity


@given(
    priority=st.sampled_from(list(InjectPriority)),
    prompt=st.text(max_size=40),
    dedup=st.none() | text,
    skill=st.none() | text,
    wait=st.booleans(),
    enqueued_at=times,
    expires_at=st.none() | times,
)
def test_a_queued_inject_round_trips(
    priority: InjectPriority,
    prompt: str,
    dedup: str | None,
    skill: str | None,
    wait: bool,
    enqueued_at: float,
    expires_at: float | None,
) -> None:
    entry = InjectEntry("i-1", prompt, priority, dedup, skill, wait, enqueued_at, expires_at)
    saved = SavedInject.model_validate_json(_save_entry(entry).model_dump_json())
    assert _load_entry(saved) == entry
