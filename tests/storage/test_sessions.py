"""Conversation sessions, transcripts and schema versions over the bus."""

from __future__ import annotations

import json

import pytest

from huxley_runtime.storage_client import SchemaClient, SessionsClient
from huxley_storage.service import StorageService
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages.storage import MAX_VALUE_BYTES, REPLY_PAGE_BYTES, SESSION_RESUME_S


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(storage: StorageService) -> Clock:
    clock = Clock()
    storage.clock = clock
    return clock


async def test_start_resumes_within_thirty_minutes(sessions: SessionsClient, clock: Clock):
    first = await sessions.start()
    assert first.resumed is False
    clock.now += SESSION_RESUME_S - 1
    again = await sessions.start()
    assert again.resumed is True and again.session_id == first.session_id
    clock.now += SESSION_RESUME_S + 1
    later = await sessions.start()
    assert later.resumed is False and later.session_id != first.session_id


async def test_a_fresh_start_never_resumes(sessions: SessionsClient, clock: Clock):
    first = await sessions.start()
    clock.now += 1
    fresh = await sessions.start(fresh=True)
    assert fresh.resumed is False and fresh.session_id != first.session_id
    clock.now += 1
    assert (await sessions.start()).session_id == fresh.session_id  # the fresh one is now the latest


async def test_activity_keeps_a_session_resumable(sessions: SessionsClient, clock: Clock):
    started = await sessions.start()
    for _ in range(3):
        clock.now += SESSION_RESUME_S - 60
        await sessions.record_turn(started.session_id, "user", "still here")
    clock.now += SESSION_RESUME_S - 60
    assert (await sessions.start()).session_id == started.session_id


async def test_an_ended_session_resumes_and_keeps_its_summary(sessions: SessionsClient, clock: Clock):
    started = await sessions.start()
    await sessions.end(started.session_id, summary="talked about tea")
    clock.now += 60
    again = await sessions.start()
    assert again.resumed and again.session_id == started.session_id
    detail = await sessions.get(started.session_id)
    assert detail.ended_at is None and detail.summary == "talked about tea"


async def test_turns_are_recorded_in_order(sessions: SessionsClient, clock: Clock):
    session = (await sessions.start()).session_id
    lines = [("user", "set a timer for tea"), ("assistant", "Done, five minutes."), ("user", "thanks")]
    for n, (role, text) in enumerate(lines):
        clock.now += 1
        await sessions.record_turn(session, role, text, turn_id=f"t-{n}")
    detail = await sessions.get(session)
    assert [(t.role, t.text) for t in detail.turns] == lines
    assert [t.idx for t in detail.turns] == [0, 1, 2]
    assert [t.turn_id for t in detail.turns] == ["t-0", "t-1", "t-2"]
    assert detail.turns[0].ts == clock.now - 2
    assert detail.turn_count == 3 and detail.last_active_at == clock.now


async def test_list_is_newest_first_with_counts(sessions: SessionsClient, clock: Clock):
    ids = []
    for n in range(3):
        session = (await sessions.start()).session_id
        ids.append(session)
        for _ in range(n):
            await sessions.record_turn(session, "user", "hi")
        await sessions.end(session, summary=f"summary {n}")
        clock.now += SESSION_RESUME_S + 10
    listed = await sessions.list()
    assert [s.session_id for s in listed] == ids[::-1]
    assert [s.turn_count for s in listed] == [2, 1, 0]
    assert [s.summary for s in listed] == ["summary 2", "summary 1", "summary 0"]
    assert [s.session_id for s in await sessions.list(limit=2)] == ids[:0:-1]


async def test_latest_summary(sessions: SessionsClient, clock: Clock):
    assert await sessions.latest_summary() is None
    first = (await sessions.start()).session_id
    await sessions.end(first, summary="first chat")
    clock.now += SESSION_RESUME_S + 10
    second = (await sessions.start()).session_id
    assert await sessions.latest_summary() == "first chat"  # the live one has none yet
    await sessions.end(second, summary="second chat")
    assert await sessions.latest_summary() == "second chat"


async def test_delete_removes_the_session_and_its_turns(sessions: SessionsClient, clock: Clock):
    session = (await sessions.start()).session_id
    await sessions.record_turn(session, "user", "forget this")
    assert await sessions.delete(session) is True
    assert await sessions.delete(session) is False
    with pytest.raises(WireError) as err:
        await sessions.get(session)
    assert err.value.code == ErrorCode.NOT_FOUND
    assert await sessions.list() == []
    # Ids are never reused, even after the newest session was deleted.
    clock.now += SESSION_RESUME_S + 10
    assert (await sessions.start()).session_id > session


async def test_unknown_sessions_are_not_found(sessions: SessionsClient, clock: Clock):
    for call in (
        sessions.record_turn(999, "user", "hello?"),
        sessions.end(999),
        sessions.get(999),
    ):
        with pytest.raises(WireError) as err:
            await call
        assert err.value.code == ErrorCode.NOT_FOUND


async def test_personas_have_separate_sessions(nc, subjects, persona, sessions, clock):
    other = SessionsClient(nc, subjects, f"{persona}x", deadline_s=0)
    mine = (await sessions.start()).session_id
    await sessions.record_turn(mine, "user", "private")
    theirs = await other.start()
    assert theirs.resumed is False
    assert [s.session_id for s in await other.list()] == [theirs.session_id]
    with pytest.raises(WireError):
        await other.record_turn(mine + 1000, "user", "x")
    assert [t.text for t in (await sessions.get(mine)).turns] == ["private"]


async def test_long_transcripts_come_in_pages(nc, subjects, persona, sessions, clock):
    session = (await sessions.start()).session_id
    texts = [f"{n:03d} " + "w" * 20_000 for n in range(2 * REPLY_PAGE_BYTES // 20_000)]
    for text in texts:
        await sessions.record_turn(session, "assistant", text)
    request = {"v": 1, "op": "get", "session_id": session}
    first = json.loads(
        (await nc.request(subjects.storage_sessions(persona), json.dumps(request).encode())).data
    )
    assert 0 < len(first["turns"]) < len(texts) and first["next_turn"] == len(first["turns"])
    assert [t.text for t in (await sessions.get(session)).turns] == texts


async def test_text_limits(sessions: SessionsClient, clock: Clock):
    session = (await sessions.start()).session_id
    await sessions.record_turn(session, "user", "ñ" * (MAX_VALUE_BYTES // 2))
    with pytest.raises(WireError) as err:
        await sessions.record_turn(session, "user", "ñ" * (MAX_VALUE_BYTES // 2 + 1))
    assert err.value.code == ErrorCode.TOO_LARGE
    with pytest.raises(WireError) as err:
        await sessions.end(session, summary="s" * (MAX_VALUE_BYTES + 1))
    assert err.value.code == ErrorCode.TOO_LARGE
    assert (await sessions.get(session)).turn_count == 1


async def test_bad_session_requests(nc, subjects, persona, storage):
    subject = subjects.storage_sessions(persona)
    for payload, code in [
        ({"v": 1, "op": "record_turn", "session_id": 1, "role": "narrator", "text": "x"}, "invalid"),
        ({"v": 1, "op": "list", "limit": 0}, "invalid"),
        ({"v": 1, "op": "get", "session_id": "one"}, "invalid"),
        ({"v": 1, "op": "rename"}, "unknown_op"),
    ]:
        reply = json.loads((await nc.request(subject, json.dumps(payload).encode(), timeout=5)).data)
        assert reply["error"]["code"] == code, (payload, reply)


async def test_schema_versions_per_skill(nc, subjects, persona, schema: SchemaClient, storage):
    books = SchemaClient(nc, subjects, persona, "audiobooks", deadline_s=0)
    assert await schema.get_version() is None
    await schema.set_version(1)
    await schema.set_version(1)
    assert await schema.get_version() == 1
    await schema.set_version(3)
    assert await schema.get_version() == 3
    assert await books.get_version() is None
    reply = await nc.request(
        subjects.storage_schema(persona, "timers"), b'{"v":1,"op":"set","version":0}', timeout=5
    )
    assert json.loads(reply.data)["error"]["code"] == "invalid"
    assert await schema.get_version() == 3


async def test_a_record_id_is_stored_once_per_session(sessions: SessionsClient, clock: Clock):
    session = (await sessions.start()).session_id
    await sessions.record_turn(session, "user", "set a timer", record_id="r-1")
    clock.now += 1
    await sessions.record_turn(session, "user", "set a timer", record_id="r-1")  # a retry after a lost reply
    await sessions.record_turn(session, "user", "set a timer", record_id="r-2")  # said twice, really
    await sessions.record_turn(session, "assistant", "Done.")
    detail = await sessions.get(session)
    assert [(t.idx, t.text) for t in detail.turns] == [(0, "set a timer"), (1, "set a timer"), (2, "Done.")]
    assert detail.turn_count == 3
    with pytest.raises(WireError) as err:
        await sessions.record_turn(session + 100, "user", "x", record_id="r-1")
    assert err.value.code == ErrorCode.NOT_FOUND
