"""Push-to-talk from the terminal for local devices: the space bar toggles
the press (a terminal reports key presses, never releases)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import termios
import tty
from collections.abc import Callable
from typing import Any

from huxley_runtime.logging import get_logger

log = get_logger(component="keyboard")


class KeyboardPtt:
    def __init__(self, on_down: Callable[[], None], on_up: Callable[[], None]) -> None:
        self.on_down = on_down
        self.on_up = on_up
        self.held = False
        self._fd: int | None = None
        self._saved: list[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop, fd: int | None = None) -> bool:
        """Listen on stdin (or `fd`) if it is a terminal; False (and nothing
        done) if not."""
        fd = sys.stdin.fileno() if fd is None else fd
        if not os.isatty(fd):
            log.info("keyboard_ptt_off", reason="stdin is not a terminal")
            return False
        self._fd = fd
        self._saved = termios.tcgetattr(self._fd)
        tty.setcbreak(self._fd)
        self._loop = loop
        loop.add_reader(self._fd, self._read)
        print("huxley audio-io: press SPACE to start talking, SPACE again to stop.", flush=True)
        return True

    def _read(self) -> None:
        assert self._fd is not None
        for char in os.read(self._fd, 64).decode(errors="ignore"):
            if char == " ":
                self.held = not self.held
                (self.on_down if self.held else self.on_up)()

    def stop(self) -> None:
        if self._fd is None:
            return
        if self._loop is not None:
            self._loop.remove_reader(self._fd)
        if self._saved is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
        self._fd = None
