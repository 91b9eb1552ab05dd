"""Mic frames queued back to back become one append of the same bytes."""

from __future__ import annotations

import asyncio
import itertools

from hypothesis import given
from hypothesis import strategies as st

from huxley_bridge import commands as c
from huxley_bridge import events as e
from huxley_bridge.mic_run import MAX_RUN, MicRun, joined_appends, take_run


def frame(n: int) -> e.MicAudio:
    return e.MicAudio(bytes([n % 256]) * 960, "p1")


def test_a_lone_frame_stays_itself() -> None:
    queue: asyncio.Queue[object] = asyncio.Queue()
    first = frame(1)
    assert take_run(first, queue) == (first, None)


def test_frames_behind_the_first_join_its_run_and_the_next_other_item_comes_back() -> None:
    queue: asyncio.Queue[object] = asyncio.Queue()
    stop, later = e.PttStop("p1", 0), frame(9)
    for item in (frame(2), frame(3), stop, later):
        queue.put_nowait(item)
    run, held = take_run(frame(1), queue)
    assert run == MicRun((frame(1), frame(2), frame(3)))
    assert held is stop
    assert queue.get_nowait() is later  # nothing past the other item was taken


def test_a_run_is_cut_at_its_limit_and_the_rest_stays_queued() -> None:
    queue: asyncio.Queue[object] = asyncio.Queue()
    for n in range(MAX_RUN + 5):
        queue.put_nowait(frame(n + 1))
    run, held = take_run(frame(0), queue)
    assert isinstance(run, MicRun) and len(run.frames) == MAX_RUN
    assert held is None and queue.qsize() == 6


commands = st.lists(
    st.one_of(
        st.binary(min_size=1, max_size=8).map(c.AppendAudio),
        st.just(c.SendModel({"type": "input_audio_buffer.commit"})),
    ),
    max_size=12,
)


@given(commands)
def test_joined_appends_keep_every_byte_and_every_other_command_in_order(cmds: list[c.Command]) -> None:
    out = joined_appends(cmds)

    def shape(seq: list[c.Command]) -> list[object]:
        """Each other command, and between them the bytes appended."""
        result: list[object] = []
        for cmd in seq:
            if isinstance(cmd, c.AppendAudio):
                if result and isinstance(result[-1], bytes):
                    result[-1] += cmd.pcm
                else:
                    result.append(cmd.pcm)
            else:
                result.append(cmd)
        return result

    assert shape(out) == shape(cmds)
    pairs = itertools.pairwise(out)
    assert not any(isinstance(a, c.AppendAudio) and isinstance(b, c.AppendAudio) for a, b in pairs)
