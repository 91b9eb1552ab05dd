"""`huxley satellite`: the leaf config it builds, its argument checks, and a
real start against the cluster: its audio-io answers the hub's health
request through the leaf, with the satellite creds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.conftest import Clients
from huxley_cli.natsserver import free_port
from huxley_cli.natsserver.cluster import Cluster
from huxley_cli.natsserver.leaf import leaf_config
from huxley_cli.satellite_cmd import plan
from huxley_wire.permissions import Identity, Role, satellite_identity
from support.services import REPO, wait_healthy


def test_the_plan_builds_the_leaf_config(clients: Clients, tmp_path: Path) -> None:
    creds = clients.creds(satellite_identity("kitchen"))
    p = plan("nats://hub.local:7422,hub2.local", creds, "kitchen", tmp_path / "data", port=5000)
    assert p.hubs == ["nats-leaf://hub.local:7422", "nats-leaf://hub2.local:7422"]
    assert p.inbox_prefix == "_INBOX_satellite@kitchen"  # the room in the prefix (issue 16)
    assert p.audio_env("nats://127.0.0.1:5000")["HUXLEY_NATS_INBOX_PREFIX"] == "_INBOX_satellite@kitchen"
    text = leaf_config("satellite-kitchen", "127.0.0.1", 5000, p.hubs, p.creds)
    assert 'listen: "127.0.0.1:5000"' in text
    assert f'credentials: "{creds.resolve()}"' in text
    assert 'urls: ["nats-leaf://hub.local:7422", "nats-leaf://hub2.local:7422"]' in text
    assert "jetstream" not in text  # a satellite keeps no streams


@pytest.mark.parametrize(
    ("hub", "site", "error"),
    [
        ("http://hub:80", "kitchen", "expected nats://"),
        ("nats://user:pw@hub:7422", "kitchen", "only host and port"),
        ("nats://hub:7422", "kit.chen", "site"),
        ("", "kitchen", "no hub URL"),
    ],
)
def test_bad_arguments_are_refused_clearly(
    clients: Clients, tmp_path: Path, hub: str, site: str, error: str
) -> None:
    creds = clients.creds(satellite_identity("kitchen"))
    with pytest.raises(ValueError, match=error):
        plan(hub, creds, site, tmp_path)
    with pytest.raises(ValueError, match="no creds file"):
        plan("nats://hub:7422", tmp_path / "missing.creds", "kitchen", tmp_path)


async def test_the_command_starts_a_leaf_and_audio_io_the_hub_can_reach(
    cluster: Cluster, clients: Clients, cluster_site: str, tmp_path: Path
) -> None:
    creds = clients.creds(satellite_identity(cluster_site))
    observer = await clients.connect(Identity(Role.OBSERVER, cluster_site, "observer"), cluster.seed_urls)
    hub = cluster.leaf_urls[0].replace("nats-leaf://", "nats://")
    log = (tmp_path / "satellite.log").open("wb")
    env = {**os.environ, "HUXLEY_WEB_PORT": str(free_port()), "PYTHONUNBUFFERED": "1"}
    env.pop("HUXLEY_NATS_URL", None)
    argv = [sys.executable, "-m", "huxley_cli.main", "satellite", "--hub", hub, "--creds", str(creds)]
    argv += ["--site", cluster_site, "--port", "0", "--data-dir", str(tmp_path / "sat")]
    proc = subprocess.Popen(
        argv, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    log.close()
    try:
        health = await wait_healthy(observer, cluster_site, "audio-io", timeout_s=60)
        assert health.service == "audio-io"
        conf = (tmp_path / "sat" / "satellite" / "leaf.conf").read_text()
        assert cluster.leaf_urls[0] in conf and str(creds.resolve()) in conf
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        print((tmp_path / "satellite.log").read_text(errors="replace")[-3000:])
