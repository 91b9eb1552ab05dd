"""`huxley up` (or `make up`) started as a terminal would, and stopped as
Ctrl-C would: one helper for every test that runs the whole stack.

Every process the stack starts inherits a marker in its environment
(`MARK_VAR`), so the leftover check finds each of them by pid in /proc,
including any started after a look at the process tree."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from support.procs import alive
from support.services import REPO

HUXLEY = [sys.executable, "-m", "huxley_cli.main"]
MARK_VAR = "HUXLEY_TEST_UP_MARK"


def marked_processes(mark: str) -> dict[int, str]:
    """pid -> command line of every live process carrying our marker."""
    found = {}
    needle = f"{MARK_VAR}={mark}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0") and alive(int(entry)):
            found[int(entry)] = cmdline.replace(b"\0", b" ").decode(errors="replace")
    return found


async def run(args: list[str], env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """A CLI command to its end, output and errors together."""
    proc = await asyncio.create_subprocess_exec(
        *args, env=env, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    return subprocess.CompletedProcess(args, proc.returncode or 0, out.decode(), "")


@dataclass
class Stack:
    """The running stack; after the `with`, how it ended."""

    process: subprocess.Popen[bytes]
    log: Path
    code: int | None = None
    stopped_with_ctrl_c: bool = False
    leftovers: dict[int, str] = field(default_factory=dict)

    def output(self) -> str:
        return self.log.read_text()


@contextlib.contextmanager
def running_up(
    command: list[str], env: dict[str, str], log: Path, *, stop_timeout: float = 40
) -> Iterator[Stack]:
    """Start `command` in its own session and process group (a terminal's),
    output to `log`; at the end SIGINT to the group (Ctrl-C), SIGKILL if it
    outlives `stop_timeout`, and every process still carrying the marker in
    `env[MARK_VAR]` (if set) killed and recorded in `leftovers`."""
    with log.open("w") as out:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    stack = Stack(process, log)
    try:
        yield stack
    finally:
        if process.poll() is None:
            stack.stopped_with_ctrl_c = True
            os.killpg(process.pid, signal.SIGINT)
        try:
            stack.code = process.wait(stop_timeout)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            if mark := env.get(MARK_VAR):
                stack.leftovers = marked_processes(mark)
                for pid in stack.leftovers:  # do not leave them to the next test either
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
