"""`huxley up`'s preloading fork server: a forked service is a process of its
own, our child (adopted: we are a subreaper), in its own process group, with
its own command line, environment and output, and its exit code or signal
comes back to us; the supervisor restarts a forked service that is killed,
and executes services when the fork server is gone."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import sys
from pathlib import Path

import pytest

from huxley_cli.forking import UNKNOWN_EXIT, ForkedProcess, ForkFailed, ForkServer
from huxley_cli.supervisor import ChildSpec, Supervisor
from support.waiting import until

HERE = Path(__file__).resolve().parent
MODULE = "forked_child"


@pytest.fixture
def forks():
    sys.path.insert(0, str(HERE))  # the server is forked from us: it finds the module as we do
    server = ForkServer.start()
    assert server is not None, "this system can fork services (Linux, pidfd, subreaper)"
    yield server
    server.close()
    sys.path.remove(str(HERE))


async def lines_of(process: ForkedProcess) -> list[str]:
    out = await asyncio.wait_for(process.stdout.read(), 30)
    return out.decode().splitlines()


def stat_of(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cmdline_of(pid: int) -> list[bytes]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")


async def test_a_forked_service_is_our_child_with_its_own_group_title_env_and_exit(forks):
    waiting = await forks.spawn(MODULE, ["wait"], {**os.environ, "FORKED_WHO": "first"})
    first = (await asyncio.wait_for(waiting.stdout.readline(), 30)).decode()
    assert f"started pid={waiting.pid} who=first preloaded=True" in first
    state = stat_of(waiting.pid)
    assert int(state[1]) == os.getpid()  # ppid: adopted by us, not the fork server's
    assert int(state[2]) == waiting.pid  # its own process group (and session)
    assert cmdline_of(waiting.pid)[1:4] == [b"-m", MODULE.encode(), b"wait"]
    assert waiting.returncode is None
    os.kill(waiting.pid, signal.SIGKILL)
    assert await asyncio.wait_for(waiting.wait(), 30) == -signal.SIGKILL
    assert waiting.returncode == -signal.SIGKILL

    exiting = await forks.spawn(MODULE, ["exit", "3"], {**os.environ, "FORKED_WHO": "second"})
    assert await lines_of(exiting) == [
        f"started pid={exiting.pid} who=second preloaded=True",
        "to stderr",
    ]
    assert await exiting.wait() == 3

    crashing = await forks.spawn(MODULE, ["crash"], dict(os.environ))
    said = "\n".join(await lines_of(crashing))
    assert "RuntimeError: boom" in said and "Traceback" in said
    assert await crashing.wait() == 1


async def test_a_forked_service_reaped_elsewhere_ends_with_an_unknown_code(forks):
    """If its exit status was taken by someone else, waiting for it still
    ends (the supervisor restarts it) instead of raising."""
    gone = await forks.spawn(MODULE, ["exit", "3"], dict(os.environ))
    assert gone.pid in forks.live  # the orphan reaper leaves it alone until we waited
    await lines_of(gone)
    os.waitpid(gone.pid, 0)  # noqa: ASYNC222 - someone else takes its status (it is exiting: no thread here, we fork)
    assert await gone.wait() == UNKNOWN_EXIT
    assert gone.pid not in forks.live


async def test_a_module_that_is_not_there_is_a_clear_exit(forks):
    missing = await forks.spawn("no_such_module_here", [], dict(os.environ))
    said = "\n".join(await lines_of(missing))
    assert "No module named no_such_module_here" in said
    assert await missing.wait() == 1


async def test_the_supervisor_restarts_a_killed_forked_service(forks):
    out = io.StringIO()
    env = {"FORKED_WHO": "supervised"}
    spec = ChildSpec("forked", [sys.executable, "-m", MODULE, "wait"], env)
    supervisor = Supervisor([spec], out, forks=forks)
    supervisor.start()
    child = supervisor.children[0]
    try:
        await until(lambda: out.getvalue().count("preloaded=True") == 1, what="the forked child")
        first = child.process
        assert first is not None and isinstance(first, ForkedProcess)
        os.kill(first.pid, signal.SIGKILL)
        await until(lambda: out.getvalue().count("preloaded=True") == 2, what="the child forked again")
        assert child.restarts == 1 and child.process is not first
        assert "exited with code -9; restarting" in out.getvalue()
    finally:
        await supervisor.stop(grace_s=10)
    assert child.process is not None and child.process.returncode is not None


async def test_a_dead_services_own_child_is_reaped_once_adopted(forks):
    """A service that dies leaving a child: the child is adopted by us (the
    subreaper) and, once it exits, reaped, not left a zombie."""
    out = io.StringIO()
    spec = ChildSpec("forked", [sys.executable, "-m", MODULE, "orphan"], {})
    supervisor = Supervisor([spec], out, forks=forks)
    supervisor.start()
    try:
        await until(lambda: "orphan=" in out.getvalue(), what="the child's own child")
        orphan = int(out.getvalue().split("orphan=")[1].split()[0])
        await until(lambda: not Path(f"/proc/{orphan}").exists(), what="the orphan reaped")
    finally:
        await supervisor.stop(grace_s=10)


async def test_without_the_fork_server_services_are_executed(forks):
    forks.kill()
    with pytest.raises(ForkFailed):
        await forks.spawn(MODULE, ["wait"], dict(os.environ))
    out = io.StringIO()
    spec = ChildSpec("forked", [sys.executable, "-m", MODULE, "wait"], {"PYTHONPATH": str(HERE)})
    supervisor = Supervisor([spec], out, forks=forks)
    supervisor.start()
    try:
        await until(lambda: "preloaded=False" in out.getvalue(), what="the child executed")
        assert "not forked (" in out.getvalue()
    finally:
        await supervisor.stop(grace_s=10)
