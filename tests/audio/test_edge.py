"""PTT presses and mic framing at the edge (pure)."""

from __future__ import annotations

from huxley_audio_io.edge import MicFramer, PttEdge, Route, mic_route
from huxley_wire.audio import FRAME_BYTES


def test_one_press_at_a_time_and_release_by_the_holding_source():
    edge = PttEdge(guard_ms=300)
    press = edge.press("web", claim_age_ms=None)
    assert press is not None and press.press_id.startswith("p-")
    assert edge.press("keyboard", claim_age_ms=None) is None  # already held
    assert edge.release("keyboard") is None  # not the holder
    assert edge.release("web") is press
    assert edge.release("web") is None


def test_a_press_just_after_a_claim_started_is_ignored():
    edge = PttEdge(guard_ms=300)
    assert edge.press("web", claim_age_ms=120.0) is None
    assert edge.held is None
    assert edge.press("web", claim_age_ms=300.0) is not None  # from 300 ms on it counts


def test_mic_goes_to_the_press_first_then_to_the_claim_then_nowhere():
    edge = PttEdge()
    assert mic_route(None, None) is None
    assert mic_route(None, "a-claim") == (Route.CLAIM, "a-claim")
    press = edge.press("web", None)
    assert mic_route(press, "a-claim") == (Route.ASSISTANT, press.press_id)


def test_framer_cuts_20ms_frames_from_any_chunking_and_flushes_the_rest():
    framer = MicFramer("p-1")
    pcm = bytes(range(256)) * 12  # 3072 bytes = 3 frames + 192 bytes
    frames = []
    for offset, size in ((0, 100), (100, 1500), (1600, 1472)):
        frames += framer.feed(pcm[offset : offset + size], arrived_us=1_000_000 + offset)
    rest = framer.flush(arrived_us=2_000_000)
    assert [f.seq for f in frames + rest] == [0, 1, 2, 3]
    assert all(len(f.pcm) == FRAME_BYTES for f in frames) and len(rest[0].pcm) == 192
    assert b"".join(f.pcm for f in frames + rest) == pcm
    assert framer.flush(arrived_us=3_000_000) == []
    assert {f.stream for f in frames} == {"p-1"}


def test_frame_timestamps_are_the_capture_time_of_their_first_sample():
    framer = MicFramer("p-1")
    # 40 ms arrive at t = 1 s: the first frame started 40 ms earlier, the second 20 ms.
    frames = framer.feed(bytes(2 * FRAME_BYTES), arrived_us=1_000_000)
    assert [f.ts_us for f in frames] == [960_000, 980_000]


async def test_space_in_a_terminal_toggles_ptt():
    import asyncio
    import os

    from huxley_audio_io.keyboard import KeyboardPtt

    presses: list[str] = []
    changed = asyncio.Event()

    def record(what: str) -> None:
        presses.append(what)
        changed.set()

    keyboard = KeyboardPtt(lambda: record("down"), lambda: record("up"))
    controller, terminal = os.openpty()
    try:
        assert keyboard.start(asyncio.get_running_loop(), fd=terminal)
        for expected in (["down"], ["down", "up"]):
            changed.clear()
            os.write(controller, b"x ")  # other keys do nothing
            await asyncio.wait_for(changed.wait(), 5)
            assert presses == expected
        keyboard.stop()
    finally:
        os.close(controller)
        os.close(terminal)
    not_a_terminal = os.open(os.devnull, os.O_RDONLY)
    try:
        assert not KeyboardPtt(lambda: None, lambda: None).start(
            asyncio.get_running_loop(), fd=not_a_terminal
        )
    finally:
        os.close(not_a_terminal)
