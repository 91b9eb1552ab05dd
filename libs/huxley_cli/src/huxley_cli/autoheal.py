"""`huxley-autoheal`: compose's watchdog. Docker restarts a container when
its process exits, never when its health check fails; a SIGSTOPped or
deadlocked service stays `unhealthy` forever. This loop asks the Docker
Engine API (over its unix socket) for this compose project's containers that
opted in (label `huxley.autoheal=true`) and are `unhealthy`, and restarts
them. Docker's health check already counts the N failures (`retries`).

`huxley-autoheal --check` is its own health check: the loop touches a
heartbeat file on every pass.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from huxley_runtime.logging import configure_logging, get_logger

log = get_logger(component="autoheal")

LABEL = "huxley.autoheal=true"
PROJECT_LABEL = "com.docker.compose.project"


@dataclass(frozen=True)
class AutohealConfig:
    socket: str = "/var/run/docker.sock"
    interval_s: float = 2.0
    cooldown_s: float = 30.0  # no second restart of one container within this
    stop_timeout_s: int = 3  # SIGTERM, then SIGKILL (a stopped process ignores TERM)
    heartbeat: Path = Path("/tmp/huxley-autoheal.alive")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> AutohealConfig:
        """HUXLEY_AUTOHEAL_SOCKET, _INTERVAL_S, _COOLDOWN_S, _STOP_TIMEOUT_S, _HEARTBEAT."""
        e = os.environ if env is None else env
        d = cls()
        p = "HUXLEY_AUTOHEAL_"
        return cls(
            socket=e.get(f"{p}SOCKET") or d.socket,
            interval_s=float(e.get(f"{p}INTERVAL_S") or d.interval_s),
            cooldown_s=float(e.get(f"{p}COOLDOWN_S") or d.cooldown_s),
            stop_timeout_s=int(e.get(f"{p}STOP_TIMEOUT_S") or d.stop_timeout_s),
            heartbeat=Path(e.get(f"{p}HEARTBEAT") or d.heartbeat),
        )


@dataclass
class Healer:
    """Pure: which unhealthy containers to restart now.

    When more than half of the watched containers are unhealthy at once the
    cause is shared (the bus down, the machine overloaded): restarting them
    all fixes nothing and adds load, so none is restarted until it passes."""

    cooldown_s: float
    restarted_at: dict[str, float] = field(default_factory=dict)

    def due(self, unhealthy: list[str], now: float, watched: int | None = None) -> list[str]:
        if watched is not None and len(unhealthy) > 1 and 2 * len(unhealthy) > watched:
            return []
        chosen = [cid for cid in unhealthy if now - self.restarted_at.get(cid, -1e18) >= self.cooldown_s]
        for cid in chosen:
            self.restarted_at[cid] = now
        return chosen


class Engine:
    """The two Engine API calls we need, over the unix socket."""

    def __init__(self, socket_path: str) -> None:
        self.http = httpx.Client(
            transport=httpx.HTTPTransport(uds=socket_path), base_url="http://docker", timeout=30
        )

    def project_of(self, container: str) -> str | None:
        reply = self.http.get(f"/containers/{container}/json")
        if reply.status_code != 200:
            return None
        labels = reply.json().get("Config", {}).get("Labels") or {}
        return labels.get(PROJECT_LABEL)

    def watched(self, project: str) -> list[tuple[str, str, bool]]:
        """(id, name, unhealthy) of this project's running opted-in containers."""
        filters = {"label": [LABEL, f"{PROJECT_LABEL}={project}"], "status": ["running"]}
        reply = self.http.get("/containers/json", params={"filters": json.dumps(filters)})
        reply.raise_for_status()
        return [
            (c["Id"], (c.get("Names") or ["?"])[0].lstrip("/"), "(unhealthy)" in str(c.get("Status", "")))
            for c in reply.json()
        ]

    def restart(self, container: str, timeout_s: int) -> None:
        self.http.post(f"/containers/{container}/restart", params={"t": timeout_s}).raise_for_status()


def run(config: AutohealConfig) -> None:
    engine = Engine(config.socket)
    # Our own container's compose project: we heal only our own household.
    project = os.environ.get("HUXLEY_AUTOHEAL_PROJECT") or engine.project_of(socket.gethostname())
    if not project:
        log.error("autoheal_no_project", hint="set HUXLEY_AUTOHEAL_PROJECT")
        raise SystemExit(2)
    log.info("autoheal_watching", project=project, label=LABEL, interval_s=config.interval_s)
    healer = Healer(config.cooldown_s)
    while True:
        try:
            seen = engine.watched(project)
            found = {cid: name for cid, name, bad in seen if bad}
            due = healer.due(list(found), time.monotonic(), watched=len(seen))
            if found and not due and len(found) > 1:
                log.warning("autoheal_holding", unhealthy=sorted(found.values()), watched=len(seen))
            for cid in due:
                log.warning("autoheal_restarting", container=found[cid])
                engine.restart(cid, config.stop_timeout_s)
            config.heartbeat.touch()
        except (httpx.HTTPError, OSError, ValueError) as exc:
            log.warning("autoheal_engine_error", error=str(exc) or type(exc).__name__)
        time.sleep(config.interval_s)


def alive(config: AutohealConfig, now: float) -> bool:
    """The loop completed a pass recently (a failing engine call does not count)."""
    try:
        age = now - config.heartbeat.stat().st_mtime
    except OSError:
        return False
    return age <= 3 * config.interval_s + 10


def main() -> None:
    config = AutohealConfig.from_env()
    if sys.argv[1:] == ["--check"]:
        raise SystemExit(0 if alive(config, time.time()) else 1)
    configure_logging(
        "autoheal", os.environ.get("HUXLEY_SITE", "home"), json=bool(os.environ.get("HUXLEY_LOG_JSON"))
    )
    try:
        run(config)
    except KeyboardInterrupt:
        pass
