"""compose's watchdog, its pure parts: which unhealthy containers to restart
(never one twice within the cooldown), its own liveness, its settings. The
Engine side is exercised against a real Docker engine in tests/deploy."""

from __future__ import annotations

import os
from pathlib import Path

from huxley_cli.autoheal import AutohealConfig, Healer, alive


def test_an_unhealthy_container_is_restarted_once_per_cooldown() -> None:
    healer = Healer(cooldown_s=30)
    assert healer.due(["a", "b"], now=100) == ["a", "b"]
    assert healer.due(["a"], now=110) == []  # still restarting: its health is not fresh yet
    assert healer.due(["a", "c"], now=131) == ["a", "c"]
    assert healer.due([], now=500) == []


def test_a_shared_failure_restarts_nothing() -> None:
    """Most containers unhealthy at once (bus down, machine overloaded): a
    restart storm would only add load."""
    healer = Healer(cooldown_s=30)
    assert healer.due(["a", "b", "c"], now=100, watched=5) == []
    assert healer.due(["a", "b"], now=100, watched=5) == ["a", "b"]
    assert healer.due(["x"], now=100, watched=1) == ["x"]


def test_liveness_follows_the_heartbeat(tmp_path: Path) -> None:
    config = AutohealConfig(interval_s=2, heartbeat=tmp_path / "alive")
    assert not alive(config, now=1000)
    config.heartbeat.touch()
    os.utime(config.heartbeat, (1000, 1000))
    assert alive(config, now=1010)
    assert not alive(config, now=1017)


def test_settings_come_from_the_environment() -> None:
    config = AutohealConfig.from_env({"HUXLEY_AUTOHEAL_INTERVAL_S": "0.5", "HUXLEY_AUTOHEAL_COOLDOWN_S": "9"})
    assert (config.interval_s, config.cooldown_s, config.socket) == (0.5, 9.0, "/var/run/docker.sock")
