"""The real focus service on a 3-node cluster, its state in JetStream KV with
replicas 3: a book and a queued inject survive SIGKILL of the node focus is
on, and of the node leading the KV stream; the inject fires once; a focus
started on another node restores everything from KV."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cluster.conftest import Clients, jetstream_ready
from huxley_cli.natsserver.cluster import Cluster
from huxley_focus.service import FocusService
from huxley_focus.settings import FocusSettings
from huxley_runtime.focus_client import FocusClient
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages.focus import ActivityMeta, Channel, InjectPriority, Snapshot
from huxley_wire.permissions import Role, service_identity, skill_identity
from huxley_wire.subjects import Subjects, focus_kv_bucket
from support.focus_peers import BridgePeer, RecordingHandler
from support.services import wait_healthy
from support.waiting import until

BOOK_PATIENCE = 30 * 60 * 1000


@dataclass
class Room:
    cluster: Cluster
    clients: Clients
    site: str
    tmp: Path
    focus: FocusService | None = None
    book: FocusClient | None = None
    handler: RecordingHandler | None = None
    bridge: BridgePeer | None = None

    def settings(self, urls: str) -> FocusSettings:
        return FocusSettings(  # type: ignore[call-arg]
            nats_url=urls,
            site=self.site,
            data_dir=self.tmp / "data",
            nats_creds=self.clients.creds(service_identity(Role.FOCUS, self.site)),
            focus_kv_replicas=3,
            _env_file=None,
        )

    async def start_focus(self, urls: str) -> FocusService:
        self.focus = FocusService(self.settings(urls))
        await self.focus.start()
        return self.focus

    def focus_node(self) -> int:
        assert self.focus is not None and self.focus.nc.connected_url is not None
        return self.cluster.index_of_port(self.focus.nc.connected_url.port or 0)


@pytest.fixture
async def room(cluster: Cluster, clients: Clients, cluster_site: str, tmp_path: Path) -> AsyncIterator[Room]:
    seeds = cluster.seed_urls
    r = Room(cluster, clients, cluster_site, tmp_path)
    probe = await clients.connect(service_identity(Role.FOCUS, cluster_site), seeds)
    await jetstream_ready(probe, focus_kv_bucket(cluster_site))
    await r.start_focus(seeds)
    book_host = skill_identity(cluster_site, "basic", ("audiobooks",))
    books = await clients.connect(book_host, seeds)
    bridge_nc = await clients.connect(service_identity(Role.BRIDGE, cluster_site), seeds)
    health = await wait_healthy(probe, cluster_site, "focus")
    assert health.detail["persisted"] is True
    r.handler = RecordingHandler()
    # A holder asks focus on its own subject: its holder id is its identity's name.
    r.book = FocusClient(books, Subjects(cluster_site), book_host.name, r.handler)
    await r.book.start()
    r.bridge = await BridgePeer(bridge_nc, cluster_site).start()
    yield r
    await r.bridge.stop()
    await r.book.stop()
    if r.focus is not None:
        await r.focus.stop()


async def book_and_queued_inject(room: Room) -> tuple[str, str]:
    """The book plays, a user turn holds DIALOG, an inject waits behind it."""
    assert room.book is not None and room.bridge is not None
    playing = await room.book.acquire(Channel.CONTENT, "audiobooks", patience_ms=BOOK_PATIENCE)
    turn = await room.bridge.client.acquire(Channel.DIALOG, "user", meta=ActivityMeta(kind="turn"))
    queued = await room.book.inject(
        "tea is ready", inject_id="i-tea", priority=InjectPriority.BLOCK_BEHIND_COMMS
    )
    assert queued.status == "queued"
    return playing.activity_id, turn.activity_id


async def finish_and_check(room: Room, book_id: str, turn_id: str) -> None:
    """End the user's turn: the inject fires exactly once, then the book resumes."""
    assert room.book is not None and room.bridge is not None and room.handler is not None
    await room.bridge.client.turn_end(turn_id)
    run = await room.bridge.next_inject("i-tea")
    await room.bridge.finish(run)
    foregrounds = lambda: room.handler.changes(book_id).count(("foreground", None))  # noqa: E731
    await until(lambda: foregrounds() >= 2, 20, "the book to resume after the inject")
    # Retries of the same run_inject are allowed (the bridge is idempotent);
    # a second inject or a second turn is not.
    assert {(r.inject_id, r.activity_id) for r in room.bridge.run_injects.items} == {
        ("i-tea", run.activity_id)
    }
    assert room.bridge.accepted == {"i-tea"}
    assert ("none", "lease_expired") not in room.handler.changes(book_id)


async def restore_elsewhere(room: Room, avoid: int) -> None:
    """Stop focus and start a fresh one on a surviving node other than `avoid`:
    it restores the book (and remembers the inject it already ran) from KV."""
    assert room.focus is not None and room.book is not None
    before = await room.book.snapshot()
    await room.focus.stop()
    others = [i for i, s in enumerate(room.cluster.servers) if s.process is not None and i != avoid]
    await room.start_focus(room.cluster.specs[others[0]].url)
    assert room.focus_node() == others[0]
    after = await room.book.snapshot()
    assert after.channels == before.channels and after.queue == before.queue
    assert (await room.book.inject("tea is ready", inject_id="i-tea")).status == "duplicate"


async def test_killing_focus_node_loses_neither_the_book_nor_the_inject(room: Room) -> None:
    book_id, turn_id = await book_and_queued_inject(room)
    victim = room.focus_node()
    room.cluster.servers[victim].kill()
    assert room.focus is not None
    focus = room.focus
    await until(lambda: focus.nc.is_connected and room.focus_node() != victim, 20, "focus to reconnect")
    book = room.book
    assert book is not None

    async def answered() -> Snapshot | None:
        try:
            return await book.snapshot()
        except WireError as exc:
            if exc.code is not ErrorCode.UNAVAILABLE:
                raise
            return None  # focus's resent subscriptions not yet known where the book asks

    snapshot = await until(answered, 20, "focus to answer the book through the surviving nodes")
    content = [a.activity_id for a in snapshot.channels.get(Channel.CONTENT, [])]
    assert book_id in content
    assert [q.inject_id for q in snapshot.queue] == ["i-tea"]
    await finish_and_check(room, book_id, turn_id)
    await restore_elsewhere(room, victim)


async def test_killing_the_kv_leader_loses_no_state(room: Room) -> None:
    book_id, turn_id = await book_and_queued_inject(room)
    assert room.focus is not None
    js = room.focus.nc.jetstream(timeout=2)
    info = await js.stream_info(f"KV_{room.settings('').kv_bucket()}")
    assert info.cluster is not None and info.cluster.leader is not None
    assert len(info.cluster.replicas or []) == 2  # three copies in all
    victim = room.cluster.index_of(info.cluster.leader)
    room.cluster.servers[victim].kill()
    # The next writes happen while the stream elects a new leader.
    await finish_and_check(room, book_id, turn_id)
    await restore_elsewhere(room, victim)
