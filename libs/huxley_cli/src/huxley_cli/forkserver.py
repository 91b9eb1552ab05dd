"""The preloading fork server of `huxley up`.

`huxley up` forks it from itself before its event loop starts, so it begins
with what the CLI imported; it imports the rest of what the services share
(numpy, websockets, the wire models, the runtime...), freezes those objects
out of the garbage collector, then forks a service per request. A forked
service shares those pages with the server, its siblings and the CLI
(copy-on-write) instead of importing its own copy, and starts without paying
for the imports again.

Each service still is a process of its own: the server forks twice, so the
service is orphaned at once and adopted by `huxley up`, which is a child
subreaper (huxley_cli.forking): the supervisor waits for it, signals its
process group and restarts it as it does a process it executed. The server
dying takes no service down; it only ends the preloading.

Protocol on the SOCK_SEQPACKET socket pair: a request is one JSON packet
{"module", "args", "env"} with the write end of the service's output pipe
attached (SCM_RIGHTS); the reply is {"pid": N} or {"error": "..."}. End of
file means `huxley up` is gone: the server exits.
"""

from __future__ import annotations

import array
import atexit
import contextlib
import ctypes
import gc
import importlib
import io
import json
import os
import pkgutil
import runpy
import signal
import socket
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

# Imported by two services or more (measured with each service's sys.modules);
# what only one service uses (SQLAlchemy: storage; openai: the bridge; soxr:
# audio-io) it imports itself after the fork, in parallel with the others.
PRELOAD = (
    "asyncio",
    "concurrent.futures",
    "ctypes",
    "decimal",
    "email.parser",
    "email.utils",
    "json",
    "ssl",
    "uuid",
    "wave",
    "zipfile",
    "zoneinfo",
    "greenlet",
    "msgpack",
    "nats",
    "nats.aio.client",
    "nats.js",
    "nats.js.kv",
    "nats.js.object_store",
    "nats.micro",
    "numpy",
    "pydantic",
    "pydantic_settings",
    "structlog",
    "structlog.dev",
    "tenacity",
    "tenacity.asyncio",
    "typer",
    "websockets",
    "websockets.http11",
    "yaml",
)
# Every module of these packages: small, and every service runs on them.
PRELOAD_PACKAGES = ("huxley_wire", "huxley_runtime")
MAX_REQUEST = 1 << 20
PR_SET_NAME = 15


def preload(log: io.TextIOBase | Any = sys.stderr) -> int:
    """Import the shared modules; a module that fails is skipped (the service
    that needs it will report why). The number of modules loaded."""
    names = list(PRELOAD)
    for package in PRELOAD_PACKAGES:
        with contextlib.suppress(ImportError):
            root = importlib.import_module(package)
            names += [m.name for m in pkgutil.walk_packages(root.__path__, f"{package}.")]
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:  # a broken optional import must not stop the server
            print(f"forkserver: not preloaded: {name}: {exc!r}", file=log, flush=True)
    # Objects that live as long as the process: keep the collector off their
    # pages, so walking them does not copy every shared page into each service.
    gc.collect()
    gc.freeze()
    return len(sys.modules)


def set_title(argv: list[str], name: str) -> None:
    """What ps and /proc/<pid>/cmdline show for a forked service: its own
    `python -m module` command line (in the space our exec'd argv had, which
    the kernel reads from our memory), and its name as the thread name."""
    with contextlib.suppress(Exception):  # cosmetic: never fail a start over it
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end (fields 48, 49)
        title = b"\0".join(a.encode() for a in argv)[: end - start - 1]
        ctypes.memmove(start, title.ljust(end - start, b"\0"), end - start)


def exit_code(exc: SystemExit) -> int:
    """What the interpreter would exit with for this SystemExit."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def run_service(module: str, args: list[str], env: dict[str, str], out: int) -> None:
    """In the forked service: its own session, output, environment and
    argv, then its module as __main__. Never returns."""
    code = 1
    try:
        os.setsid()  # its own process group, as start_new_session gives an executed child
        signal.signal(signal.SIGINT, signal.default_int_handler)  # the server ignores it
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(null)
        os.close(out)
        # Unbuffered as PYTHONUNBUFFERED makes an executed child's output.
        for fd, attr in ((1, "stdout"), (2, "stderr")):
            stream = io.TextIOWrapper(
                io.FileIO(fd, "w", closefd=False), encoding="utf-8", errors="backslashreplace",
                line_buffering=True, write_through=True,
            )  # fmt: skip
            setattr(sys, attr, stream)
            setattr(sys, f"__{attr}__", stream)
        os.environ.clear()
        os.environ.update(env)
        sys.argv = [module, *args]
        # The path `python -m` would have: the working directory first, then PYTHONPATH.
        extra = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p not in sys.path]
        sys.path[0:1] = [os.getcwd(), *extra]
        set_title([Path(sys.executable).name, "-m", module, *args], module.removeprefix("huxley_"))
        # The preloaded objects stay frozen (they live as long as the process):
        # a full collection walking them would copy every shared page.
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            code = exit_code(exc)
        except BaseException:
            traceback.print_exc()
            code = 1
        # What the interpreter does at exit: join threads, then atexit handlers.
        shutdown = getattr(threading, "_shutdown", None)
        if shutdown is not None:
            shutdown()
        atexit._run_exitfuncs()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def fork_service(module: str, args: list[str], env: dict[str, str], out: int, keep: list[int]) -> int:
    """Fork twice: the intermediate exits at once, so the service is adopted
    by the nearest subreaper (`huxley up`), whose child it then is. The
    service's pid, once the intermediate is reaped (so the adoption is done)."""
    read, write = os.pipe()
    middle = os.fork()
    if middle == 0:
        try:
            os.close(read)
            service = os.fork()
            if service == 0:
                os.close(write)
                for fd in keep:
                    os.close(fd)
                run_service(module, args, env, out)
            os.write(write, str(service).encode())
        finally:
            os._exit(0)
    os.close(write)
    try:
        with os.fdopen(read, "rb") as pipe:
            said = pipe.read()
    finally:
        os.waitpid(middle, 0)
    if not said:
        raise OSError("the fork did not give a pid")
    return int(said)


def serve(sock: socket.socket) -> None:
    while True:
        fds = array.array("i")
        try:
            data, ancillary, _, _ = sock.recvmsg(MAX_REQUEST, socket.CMSG_SPACE(fds.itemsize))
        except (ConnectionError, OSError):
            return
        if not data:
            return  # huxley up closed its end
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
        try:
            request = json.loads(data)
            if len(fds) != 1:
                raise ValueError(f"expected one output descriptor, got {len(fds)}")
            pid = fork_service(
                str(request["module"]),
                [str(a) for a in request.get("args", [])],
                {str(k): str(v) for k, v in dict(request["env"]).items()},
                fds[0],
                [sock.fileno()],
            )
            reply: dict[str, Any] = {"pid": pid}
        except Exception as exc:
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
        try:
            sock.send(json.dumps(reply).encode())
        except OSError:
            return


def serve_forever(sock: socket.socket) -> None:
    """The forked server's life, until `huxley up` closes the socket."""
    os.setsid()  # Ctrl-C is for `huxley up`, which then closes our socket
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    # numpy's BLAS would start a thread per core at import: a server with
    # threads must not fork, and no service does linear algebra.
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    set_title([Path(sys.executable).name, "-m", "huxley_cli.forkserver"], "forkserver")
    preload()
    serve(sock)
