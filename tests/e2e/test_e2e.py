"""End to end over the real bus: storage, focus, a skill-host with the
published skills (audiobooks, timers) and two of ours, audio-io with the file
backend, the realtime bridge, and the local Realtime simulator as the model.

A press "says" a DTMF key into the microphone; the simulator's rules
(rules.yaml) map each key to speech and tool calls. Every scenario reads what
reached the speaker back from audio-io's WAV (speaker.Timeline) and asserts
the order and the extent of what was heard.
"""

from __future__ import annotations

import itertools
import json

import pytest

from e2e.conftest import TOOLS, Book
from e2e.e2e_skills import intercom_pcm
from e2e.speaker import BOOK, Block, Timeline, speech
from e2e.stack import PERSONA, Stack
from huxley_runtime.storage_client import SessionsClient, SettingsClient
from huxley_wire.messages.focus import Channel
from support.waiting import until

pytestmark = pytest.mark.slow

ACK = "Here's your book."
HELLO = "Hello there."
TEA = "Tea is ready."
CALLING = "Calling front door."
DOORBELL = "Someone rang doorbell."
INTERCOM = "intercom"
STORY = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima"
LONG = "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu"
GARBLED = "Arguments were garbled."
UNKNOWN = "Unknown tool noted."
WAITED = "Waited too long."


def references(*phrases: str, intercom: bool = False) -> dict[str, bytes]:
    refs = {phrase: speech(phrase) for phrase in phrases}
    if intercom:
        refs[INTERCOM] = intercom_pcm()
    return refs


def spoken_ms(phrase: str) -> int:
    return len(speech(phrase)) // 48


async def dialog_is_free(stack: Stack) -> None:
    """No turn holds DIALOG (focus's own view), and the bridge has no live turn."""

    async def free() -> bool:
        snapshot = await stack.focus_snapshot()
        return not snapshot.channels.get(Channel.DIALOG)

    async def no_turn() -> bool:
        # The bridge forgets a turn once focus answered its turn_end, a moment after DIALOG went.
        return (await stack.bridge_snapshot()).turn_id is None

    await until(free, what="DIALOG released")
    await until(no_turn, what="the bridge without a live turn")


async def stored_turns(stack: Stack, *, count: int) -> list[tuple[str, str]]:
    """(role, text) of every stored turn of the persona, once there are `count`."""
    sessions = SessionsClient(stack.nc, stack.subjects, PERSONA)

    async def turns() -> list[tuple[str, str]]:
        found = []
        for info in await sessions.list():
            found += [(t.role, t.text) for t in (await sessions.get(info.session_id)).turns]
        return found if len(found) >= count else []

    result: list[tuple[str, str]] = await until(turns, what=f"{count} stored turns")
    return result


async def book_playing(stack: Stack, *, after: int, ms: float) -> str:
    """The book's CONTENT activity, once `ms` of it has been played."""
    started = await stack.log.wait(
        "focus.event.activity",
        lambda a: a["channel"] == "content" and a["state"] == "foreground",
        after=after,
    )
    await stack.played_at_least(started["activity_id"], ms, after=after)
    return str(started["activity_id"])


def assert_contiguous_book(blocks: list[Block], what: str) -> None:
    """Book blocks heard back to back come from consecutive places in the book."""
    for before, after in itertools.pairwise(blocks):
        if after.index == before.index + 1:
            assert after.book_s == pytest.approx(before.book_s + 0.02, abs=1e-6), (what, before, after)


async def test_ptt_play_the_book_speaks_the_ack_then_plays_the_book(stack: Stack, book: Book) -> None:
    mark = stack.log.mark
    await stack.press("3")
    turn = await stack.turn_ended(after=mark)
    stream = await book_playing(stack, after=mark, ms=1500)
    assert [o["output"]["playing"] for o in stack.tool_outputs()] == [True]
    await dialog_is_free(stack)

    # The exchange is stored through the storage service.
    stored = await stored_turns(stack, count=2)
    assert ("user", "Play the book.") in stored and ("assistant", ACK) in stored, stored

    heard = Timeline(await stack.speaker(), references(ACK), book.pcm)
    assert heard.order() == [ACK, BOOK], heard.describe()
    # The whole acknowledgement, then the book from its start, nothing skipped.
    assert heard.heard_ms(ACK) >= spoken_ms(ACK) - 100, heard.describe()
    book_blocks = heard.of(BOOK)
    assert book_blocks[0].book_s < 0.1 and heard.heard_ms(BOOK) >= 1400, heard.describe()
    assert_contiguous_book(book_blocks, "the book")
    assert turn["activity_id"] != stream  # the speech was the turn's, the book its own activity


async def test_a_timer_preempts_the_book_is_spoken_and_the_book_resumes(stack: Stack, book: Book) -> None:
    mark = stack.log.mark
    await stack.press("3")
    stream = await book_playing(stack, after=mark, ms=1000)

    # The timer is set straight on the bus (a press would stop the book) and
    # fires a second later, during the book.
    reply = await stack.call_tool("timers", "set_timer", {"seconds": 1, "message": TEA})
    assert '"ok": true' in reply["output"], reply
    fired = stack.log.mark
    injected = await stack.turn_ended(after=fired, kind="injected")
    paused = await stack.log.wait(
        "focus.event.activity",
        lambda a: a["activity_id"] == stream and a["state"] != "foreground",
        after=fired,
    )
    assert paused["state"] == "background"  # paused under the announcement, not ended
    resumed = await stack.log.wait(
        "focus.event.activity",
        lambda a: a["activity_id"] == stream and a["state"] == "foreground",
        after=fired,
    )
    assert resumed["seq"] > paused["seq"]
    await stack.played_at_least(stream, stack.played_ms(stream) + 1000)
    assert injected["inject_id"]
    await dialog_is_free(stack)

    heard = Timeline(await stack.speaker(), references(ACK, TEA), book.pcm)
    assert heard.order() == [ACK, BOOK, TEA, BOOK], heard.describe()
    assert heard.heard_ms(TEA) >= spoken_ms(TEA) - 100, heard.describe()
    before_tea = heard.book_between(0, heard.first(TEA))
    after_tea = heard.book_between(heard.last(TEA), len(heard.blocks))
    assert len(after_tea) >= 45, heard.describe()
    # It resumes where it was paused: the paused book kept its buffered audio
    # (the inject cleared only the bridge's own stream, BRIDGE-16), so the next
    # 20 ms block follows the last one heard.
    gap = after_tea[0].book_s - before_tea[-1].book_s
    assert 0.0 < gap <= 0.045, (gap, heard.describe())
    assert_contiguous_book(before_tea, "before the timer")
    assert_contiguous_book(after_tea, "after the timer")


async def test_ptt_during_the_book_stops_it(stack: Stack, book: Book) -> None:
    mark = stack.log.mark
    await stack.press("3")
    stream = await book_playing(stack, after=mark, ms=1200)

    second = stack.log.mark
    await stack.press("0")
    ended = await stack.log.wait(
        "focus.event.activity", lambda a: a["activity_id"] == stream and a["state"] == "none", after=second
    )
    assert ended["reason"] == "user_ptt"
    await stack.turn_ended(after=second)
    await dialog_is_free(stack)
    assert not (await stack.focus_snapshot()).channels.get(Channel.CONTENT)
    kv = SettingsClient(stack.nc, stack.subjects, PERSONA, "audiobooks")
    saved = float(await kv.get_setting("position:Chirps.wav") or "0")

    heard = Timeline(await stack.speaker(), references(ACK, HELLO), book.pcm)
    assert heard.order() == [ACK, BOOK, HELLO], heard.describe()
    assert heard.heard_ms(HELLO) >= spoken_ms(HELLO) - 100, heard.describe()
    assert not heard.book_between(heard.first(HELLO), len(heard.blocks))
    # The book kept its place: where the press stopped it (frames already sent
    # to the speaker but dropped by the press count as read).
    assert heard.of(BOOK)[-1].book_s <= saved <= heard.of(BOOK)[-1].book_s + 1.0


async def test_ptt_while_the_model_speaks_truncates_its_memory_at_what_was_heard(stack: Stack) -> None:
    mark = stack.log.mark
    await stack.press("2")
    speaking = await stack.log.wait("bridge.event.turn", lambda t: t["phase"] == "speaking", after=mark)
    await stack.played_at_least(speaking["activity_id"], 1000, after=mark)

    second, sent = stack.log.mark, len(stack.sim.received)
    await stack.press("0")
    cancelled = await stack.log.wait(
        "bridge.event.turn", lambda t: t["turn_id"] == speaking["turn_id"] and t["phase"] == "cancelled"
    )
    assert cancelled["reason"] == "user_ptt"
    truncate = await stack.sim.wait_for("conversation.item.truncate", after=sent)
    await stack.turn_ended(after=second)
    await dialog_is_free(stack)

    heard = Timeline(await stack.speaker(), references(LONG, HELLO))
    assert heard.order() == [LONG, HELLO], heard.describe()
    assert 1000 <= heard.heard_ms(LONG) < spoken_ms(LONG) - 1000, heard.describe()
    # The model now remembers saying exactly what the user heard of it (a word
    # gap at the cut may hide up to 40 ms of silence from the WAV reading).
    assert truncate["audio_end_ms"] == pytest.approx(heard.heard_ms(LONG), abs=60), heard.describe()
    assert heard.heard_ms(HELLO) >= spoken_ms(HELLO) - 100, heard.describe()


async def test_a_preempt_inject_ends_a_claim(stack: Stack) -> None:
    mark = stack.log.mark
    await stack.press("6")
    claim = await stack.log.wait(
        "focus.event.activity",
        lambda a: a["channel"] == "comms" and a["state"] == "foreground",
        after=mark,
    )
    await stack.played_at_least(claim["activity_id"], 800, after=mark)

    ring = stack.log.mark
    await stack.client_event("doorbell.ring", {})
    ended = await stack.log.wait(
        "focus.event.activity",
        lambda a: a["activity_id"] == claim["activity_id"] and a["state"] == "none",
        after=ring,
    )
    assert ended["reason"] == "preempted"
    inject = await stack.log.wait("focus.event.inject", lambda i: i["status"] == "fired", after=ring)
    assert inject["priority"] == "preempt" and inject["skill"] == "doorbell"
    await stack.turn_ended(after=ring, kind="injected")
    await dialog_is_free(stack)
    kv = SettingsClient(stack.nc, stack.subjects, PERSONA, "intercom")
    assert await kv.get_setting("claim_end") == "preempted"

    heard = Timeline(await stack.speaker(), references(CALLING, DOORBELL, intercom=True))
    assert heard.order() == [CALLING, INTERCOM, DOORBELL], heard.describe()
    assert heard.heard_ms(INTERCOM) >= 800 and heard.heard_ms(DOORBELL) >= spoken_ms(DOORBELL) - 100
    assert heard.last(INTERCOM) < heard.first(DOORBELL)


async def test_the_model_dropping_mid_response_reconnects_and_nothing_stays_stuck(stack: Stack) -> None:
    mark = stack.log.mark
    await stack.press("1")  # the story's response drops the socket after 700 ms of audio
    down = await stack.log.wait("bridge.event.session", lambda s: s["connected"] is False, after=mark)
    assert "dropped" in down["message"]  # said as a drop (offline mode is the configured simulator)
    dropped_at = len(stack.sim.received)
    await stack.log.wait(
        "bridge.event.turn",
        lambda t: t["kind"] == "user" and t["phase"] in ("ended", "cancelled"),
        after=mark,
    )
    await stack.log.wait("bridge.event.session", lambda s: s["connected"] is True, after=mark)
    await stack.sim.wait_connections(2)
    await dialog_is_free(stack)
    await until(lambda: stack.declared_tools() >= TOOLS, what="tools declared again")
    assert (await stack.bridge_snapshot()).connected
    # The summary made at the disconnect is stored and told to the new session.
    summaries = [i.summary for i in await SessionsClient(stack.nc, stack.subjects, PERSONA).list()]
    assert any(summary and "Tell me a story." in summary for summary in summaries), summaries
    told = [
        e["session"].get("instructions") or ""
        for e in stack.sent("session.update", after=dropped_at)
        if "instructions" in e.get("session", {})
    ]
    assert told and "Tell me a story." in told[0], told

    again = stack.log.mark
    await stack.press("0")
    await stack.turn_ended(after=again)
    await dialog_is_free(stack)

    heard = Timeline(await stack.speaker(), references(STORY, HELLO))
    assert heard.order() == [STORY, HELLO], heard.describe()
    assert 300 <= heard.heard_ms(STORY) <= 800, heard.describe()  # what came before the drop, no more
    assert heard.heard_ms(HELLO) >= spoken_ms(HELLO) - 100, heard.describe()


async def test_tool_errors_reach_the_model_and_the_turn_goes_on(stack: Stack) -> None:
    cases = [
        ("7", "echo_args", "invalid_arguments", GARBLED),
        ("8", "no_such_tool", "unknown_tool", UNKNOWN),
        ("9", "wait_forever", "timeout", WAITED),
    ]
    for key, tool, error, _ in cases:
        mark, sent = stack.log.mark, len(stack.sim.received)
        await stack.press(key)
        await stack.turn_ended(after=mark)
        calls = [
            e["item"]
            for e in stack.sent("conversation.item.create", after=sent)
            if e["item"].get("type") == "function_call_output"
        ]
        assert len(calls) == 1, (tool, calls)
        output = json.loads(calls[0]["output"])
        assert output.get("error") == error, (tool, output)
        assert stack.sent("response.create", after=sent), "no follow-up response after the error"
        await dialog_is_free(stack)

    last = stack.log.mark
    await stack.press("0")
    await stack.turn_ended(after=last)

    heard = Timeline(await stack.speaker(), references(GARBLED, UNKNOWN, WAITED, HELLO))
    assert heard.order() == [GARBLED, UNKNOWN, WAITED, HELLO], heard.describe()
    for phrase in (GARBLED, UNKNOWN, WAITED, HELLO):
        assert heard.heard_ms(phrase) >= spoken_ms(phrase) - 100, (phrase, heard.describe())
