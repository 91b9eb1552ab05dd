"""A nats-server on a port it chose itself: `free_port` only finds a port
free, and an outgoing connection's ephemeral port may take it before the
server binds it; the start is then tried again on another port."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from huxley_cli import natsserver
from huxley_cli.natsserver import ExitedEarly, NatsServer


def first_taken(busy: int, handed: list[int]) -> Callable[[str], int]:
    """`free_port` that hands out `busy` first, then real free ports."""
    real = natsserver.free_port

    def free_port(host: str = "127.0.0.1") -> int:
        port = busy if not handed else real(host)
        handed.append(port)
        return port

    return free_port


def test_a_chosen_port_taken_before_the_server_binds_it_is_chosen_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))  # bound, not listening: as a connection's own port
        busy = taken.getsockname()[1]
        handed: list[int] = []
        monkeypatch.setattr(natsserver, "free_port", first_taken(busy, handed))
        server = NatsServer(store_dir=tmp_path / "js", log_file=tmp_path / "nats.log").start()
        try:
            assert handed[0] == busy and server.port == handed[1] != busy
            with socket.create_connection(("127.0.0.1", server.port), timeout=2) as conn:
                assert conn.recv(4).startswith(b"INFO")  # nats-server, not someone else
        finally:
            server.stop()


def test_a_port_it_was_given_is_not_changed(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        busy = taken.getsockname()[1]
        server = NatsServer(store_dir=tmp_path / "js", port=busy, log_file=tmp_path / "nats.log")
        with pytest.raises(ExitedEarly):
            server.start()
        assert server.port == busy
        assert "address already in use" in (tmp_path / "nats.log").read_text()
