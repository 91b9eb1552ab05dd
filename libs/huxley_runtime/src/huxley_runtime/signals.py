"""SIGTERM and SIGINT as a clean stop, the same in every process."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def stop_on_signals(stop: Callable[[], None]) -> None:
    """Call `stop` (in the running loop) on SIGTERM or SIGINT. Where the loop
    cannot take signal handlers (not the main thread, Windows) nothing is
    installed and the default behaviour stays."""
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop)
