"""Every acknowledged write survives a SIGKILL of the storage process, and a
SIGTERM answers every write the service took before it exits."""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.client import Client

from huxley_runtime.rpc import request
from huxley_runtime.storage_client import SettingsClient
from huxley_wire.errors import WireError
from huxley_wire.messages.storage import KvSet
from huxley_wire.subjects import Subjects
from support.services import ServiceProcess, wait_healthy

BURST = 600
IN_FLIGHT = 24
KILL_AFTER_ACKS = 150


@pytest.mark.slow
async def test_acknowledged_writes_survive_sigkill(
    nc: Client, subjects: Subjects, site, persona, storage_env, tmp_path
):
    proc = ServiceProcess("huxley_storage", storage_env, tmp_path / "storage.log").start()
    try:
        await wait_healthy(nc, site, "storage")
        subject = subjects.storage_kv(persona, "timers")
        acked: dict[str, str] = {}
        refused = 0
        enough = asyncio.Event()
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(BURST):
            queue.put_nowait(n)

        async def client() -> None:
            nonlocal refused
            while not queue.empty():
                n = queue.get_nowait()
                key, value = f"burst:{n:04d}", f"value {n} " + "x" * (n % 200)
                try:
                    await request(nc, subject, KvSet(key=key, value=value), timeout=2)
                except WireError:
                    refused += 1  # killed before it answered: not acknowledged, may or may not be there
                    continue
                acked[key] = value
                if len(acked) >= KILL_AFTER_ACKS:
                    enough.set()

        async def killer() -> None:
            await enough.wait()
            proc.kill()  # SIGKILL, mid-burst

        clients = [asyncio.create_task(client()) for _ in range(IN_FLIGHT)]
        kill = asyncio.create_task(killer())
        await asyncio.gather(*clients)
        await kill
        assert refused > 0, "the kill came after the burst; nothing was tested"
        assert len(acked) >= KILL_AFTER_ACKS

        proc = ServiceProcess("huxley_storage", storage_env, tmp_path / "storage-2.log").start()
        await assert_stored(nc, subjects, site, persona, acked)
        assert await proc.terminate(timeout_s=15) == 0, proc.output()
    finally:
        proc.kill()


@pytest.mark.slow
async def test_a_sigterm_mid_burst_answers_every_write_it_took(
    nc: Client, subjects: Subjects, site, persona, storage_env, tmp_path
):
    """A restart (SIGTERM) in the middle of a burst: each write the service
    took is answered before it exits, so a caller sees either its ack or
    `unavailable` (nobody took it: safe to send again), never a timeout."""
    proc = ServiceProcess("huxley_storage", storage_env, tmp_path / "storage.log").start()
    try:
        await wait_healthy(nc, site, "storage")
        subject = subjects.storage_kv(persona, "timers")
        acked: dict[str, str] = {}
        outcomes: list[str] = []
        enough = asyncio.Event()
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(BURST):
            queue.put_nowait(n)

        async def client() -> None:
            while not queue.empty():
                n = queue.get_nowait()
                key, value = f"burst:{n:04d}", f"value {n}"
                try:
                    await request(nc, subject, KvSet(key=key, value=value), timeout=5)
                except WireError as exc:
                    outcomes.append(str(exc.code))
                    continue
                outcomes.append("ok")
                acked[key] = value
                if len(acked) >= KILL_AFTER_ACKS:
                    enough.set()

        clients = [asyncio.create_task(client()) for _ in range(IN_FLIGHT)]
        await enough.wait()
        stopped = asyncio.ensure_future(proc.terminate(timeout_s=15))
        await asyncio.gather(*clients)
        assert await stopped == 0, proc.output()
        assert "unavailable" in outcomes, "the SIGTERM came after the burst; nothing was tested"
        assert set(outcomes) <= {"ok", "unavailable"}, sorted(set(outcomes))

        proc = ServiceProcess("huxley_storage", storage_env, tmp_path / "storage-2.log").start()
        await assert_stored(nc, subjects, site, persona, acked)
        assert await proc.terminate(timeout_s=15) == 0, proc.output()
    finally:
        proc.kill()


async def assert_stored(
    nc: Client, subjects: Subjects, site: str, persona: str, acked: dict[str, str]
) -> None:
    """Every acknowledged write is there, as acknowledged, in the restarted storage."""
    await wait_healthy(nc, site, "storage")
    kv = SettingsClient(nc, subjects, persona, "timers", deadline_s=10)
    stored = dict(await kv.list_settings("burst:"))
    missing = {key for key in acked if stored.get(key) != acked[key]}
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {sorted(missing)[:5]}"
