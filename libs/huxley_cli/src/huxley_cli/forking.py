"""`huxley up`'s side of the preloading fork server (huxley_cli.forkserver).

`ForkServer.start` makes this process a child subreaper and forks the
server from it (call it before any thread or event loop exists: only the
calling thread survives a fork); `spawn` has the server fork a
`python -m <module>` service, which is adopted
by this process, so it is our child as an executed one would be: waited for
through a pidfd, its exit code from waitpid, its process group signalled.
When the server cannot be used (no fork or subreaper on this system, or it
died or stopped answering) `spawn` raises ForkFailed and the supervisor
executes the service as before: the fork server makes starts cheaper, it is
never needed for one.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import ctypes
import json
import os
import select
import signal
import socket
import sys
import traceback
from collections.abc import Collection
from pathlib import Path
from typing import Protocol

from huxley_cli.forkserver import serve_forever

PR_SET_CHILD_SUBREAPER = 36
# The first answer waits for the server's imports; on a loaded machine those
# take seconds. Past this, it is taken as stuck and services are executed.
REPLY_TIMEOUT_S = 30.0
UNKNOWN_EXIT = 255  # as asyncio reports a child whose exit status it could not read


class Running(Protocol):
    """What the supervisor uses of a started child (asyncio's Process has it)."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    @property
    def stdout(self) -> asyncio.StreamReader | None: ...

    async def wait(self) -> int: ...


class ForkFailed(Exception):
    """The fork server could not start this service."""


def pidfds_work() -> bool:
    """Whether this kernel has pidfds (Linux 5.3+), which waiting for a forked service needs."""
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    return True


def become_subreaper() -> bool:
    """Orphans of our descendants (a forked service) become our children."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def reap_orphans(known: Collection[int]) -> list[int]:
    """Reap the zombies we adopted as a subreaper that nobody waits for (a
    service's own child, left running when the service died, has since
    exited): our children in state Z whose pid is not `known` (those have an
    owner that waits for them). The pids reaped."""
    me, reaped = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in known:
            continue
        try:
            state, parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError):
            continue
        if state == "Z" and int(parent) == me:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(int(entry.name), os.WNOHANG)
                reaped.append(int(entry.name))
    return reaped


async def until_exited(pid: int) -> None:
    """Wait until our child `pid` has exited, without a thread or a poll loop
    (a pidfd); it is not reaped. Raises what `os.pidfd_open` raises
    (ProcessLookupError: no such process)."""
    loop = asyncio.get_running_loop()
    fd = os.pidfd_open(pid)
    try:
        ready: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(fd, wake)
        try:
            await ready
        finally:
            loop.remove_reader(fd)
    finally:
        os.close(fd)


async def exit_of(pid: int) -> int:
    """Wait for our child `pid` to exit and reap it: its exit code (-N for signal N)."""
    try:
        await until_exited(pid)
    except ProcessLookupError:
        return UNKNOWN_EXIT
    try:
        _, status = os.waitpid(pid, os.WNOHANG)  # noqa: ASYNC222 - it has exited: reaping does not wait
    except ChildProcessError:
        return UNKNOWN_EXIT  # reaped by someone else: its code is lost, not its end
    return os.waitstatus_to_exitcode(status)


class ForkedProcess:
    """A forked service, shown as asyncio shows an executed child."""

    def __init__(self, pid: int, stdout: asyncio.StreamReader, live: set[int] | None = None) -> None:
        self._pid = pid
        self._stdout = stdout
        self._live = live if live is not None else set()
        self._live.add(pid)
        self._returncode: int | None = None
        self._exit: asyncio.Task[int] | None = None

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def returncode(self) -> int | None:
        return self._returncode

    @property
    def stdout(self) -> asyncio.StreamReader:
        return self._stdout

    async def wait(self) -> int:
        if self._exit is None:
            self._exit = asyncio.create_task(exit_of(self._pid))
            self._exit.add_done_callback(self._exited)
        return await asyncio.shield(self._exit)

    def _exited(self, task: asyncio.Task[int]) -> None:
        self._live.discard(self._pid)
        if not task.cancelled() and task.exception() is None:
            self._returncode = task.result()


class ForkServer:
    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid = pid
        self.sock = sock
        self.broken: str | None = None
        self.live: set[int] = set()  # forked services not reaped yet: the orphan reaper leaves them
        self._one_at_a_time = asyncio.Lock()

    @classmethod
    def start(cls) -> ForkServer | None:
        """The server forked from this process (its imports under way), or
        None where this system cannot fork services to us."""
        if not pidfds_work() or not become_subreaper():
            return None
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for stream in (sys.stdout, sys.stderr):  # else both processes write what is buffered
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        pid = os.fork()
        if pid == 0:  # the server: none of the caller's code runs here again
            code = 0
            try:
                ours.close()
                serve_forever(theirs)
            except BaseException:
                traceback.print_exc()
                code = 1
            finally:
                os._exit(code)
        theirs.close()
        ours.setblocking(False)
        return cls(pid, ours)

    @staticmethod
    def forkable(argv: list[str]) -> tuple[str, list[str]] | None:
        """(module, args) of a `python -m module args` command of our interpreter."""
        if len(argv) >= 3 and argv[0] == sys.executable and argv[1] == "-m":
            return argv[2], argv[3:]
        return None

    async def spawn(self, module: str, args: list[str], env: dict[str, str]) -> ForkedProcess:
        if self.broken is not None:
            raise ForkFailed(self.broken)
        loop = asyncio.get_running_loop()
        async with self._one_at_a_time:
            read, write = os.pipe()
            try:
                request = json.dumps({"module": module, "args": args, "env": env}).encode()
                try:
                    self.sock.sendmsg(
                        [request],
                        [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [write]).tobytes())],
                    )
                    answer = await asyncio.wait_for(loop.sock_recv(self.sock, 4096), REPLY_TIMEOUT_S)
                except (OSError, TimeoutError) as exc:
                    answer = b""
                    why = f"{type(exc).__name__}: {exc}"
                else:
                    why = "it exited"
                if not answer:
                    self._break(f"the fork server is gone ({why})")
                    raise ForkFailed(self.broken)
                reply = json.loads(answer)
                if "pid" not in reply:
                    raise ForkFailed(str(reply.get("error", reply)))
            except BaseException:
                os.close(read)
                raise
            finally:
                os.close(write)  # the service has it now: its end is the only writer
        reader = asyncio.StreamReader(limit=1 << 20)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read, "rb", 0))
        return ForkedProcess(int(reply["pid"]), reader, self.live)

    def _break(self, why: str) -> None:
        self.broken = why
        self.kill()

    def kill(self) -> None:
        """SIGKILL the server (not its services)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)

    def close(self, grace_s: float = 5.0) -> None:
        """Stop the server (it exits when its socket closes) and reap it; its
        services live on. Blocks up to `grace_s` (it exits at once)."""
        self.broken = self.broken or "closed"
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes a start waiting for its answer
        self.sock.close()
        try:
            fd = os.pidfd_open(self.pid)
        except ProcessLookupError:
            return  # reaped already
        try:
            if not select.select([fd], [], [], grace_s)[0]:
                self.kill()
        finally:
            os.close(fd)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
