"""When `run_inject` goes out (PERF-8): an inject fired on a free floor
tells only the bridge, and the bridge's own notice does not hold it back; one
that also tells another holder still waits for that holder's ack. Either way
the state that fired it is written first: handed to focus's connection ahead
of any notice, its acknowledgement awaited only before the caller is
answered (PERF-11)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg

from huxley_focus.service import FocusService
from huxley_focus.settings import FocusSettings
from huxley_focus.state import SavedFocus
from huxley_focus.store import KEY
from huxley_runtime.bus import settle
from huxley_runtime.rpc import request
from huxley_wire.codec import Ok, RequestTable, encode
from huxley_wire.messages import focus as m
from huxley_wire.messages.bridge import InjectAccepted, RunInject
from huxley_wire.messages.focus import Channel, FocusChange, FocusState, InjectPriority
from huxley_wire.subjects import Subjects
from support.focus_peers import Recorder
from support.services import running


class InjectDesk:
    """bridge.inject: records each run_inject's id as it arrives, then what
    focus's bucket held as current inject at that moment, then accepts it."""

    def __init__(self, nc: Client, focus: FocusService) -> None:
        self.nc = nc
        self.focus = focus
        self.arrived = Recorder()  # inject ids
        self.saved = Recorder()  # (inject id, the bucket's current inject id)
        self._table = RequestTable([RunInject])

    async def start(self) -> InjectDesk:
        await self.nc.subscribe(self.focus.subjects.bridge_inject(), cb=self._serve)
        await settle(self.nc)
        return self

    async def _serve(self, msg: Msg) -> None:
        req = self._table.decode(msg.data)
        assert isinstance(req, RunInject)
        self.arrived.add(req.inject_id)
        kv = await self.focus.nc.jetstream().key_value(self.focus.settings.kv_bucket())
        saved = SavedFocus.model_validate_json((await kv.get(KEY)).value or b"{}")
        current = saved.current.entry.inject_id if saved.current is not None else None
        self.saved.add((req.inject_id, current))
        await msg.respond(encode(InjectAccepted(inject_id=req.inject_id, status="accepted")))


class HeldWrites:
    """focus's state writes go to the server as usual, but focus hears that a
    write is done only when the test releases it (a slow JetStream ack)."""

    def __init__(self, focus: FocusService) -> None:
        store = focus._store
        assert store is not None and store.ready
        self.release = asyncio.Event()
        self.stored = Recorder()  # keys the server acknowledged, focus not yet told
        kv = store._kv
        put = kv.put

        async def held_put(key: str, value: bytes, *args: Any, **kwargs: Any) -> Any:
            ack = await put(key, value, *args, **kwargs)
            self.stored.add(key)
            await self.release.wait()
            return ack

        kv.put = held_put


class SentBytes:
    """What focus's connection hands its socket, in order (nats-py's transport)."""

    def __init__(self, nc: Client) -> None:
        self.data = bytearray()
        transport: Any = nc._transport
        write, writelines = transport.write, transport.writelines

        def record(payload: bytes) -> None:
            self.data += payload
            write(payload)

        def record_lines(payloads: list[bytes]) -> None:
            for payload in payloads:
                self.data += payload
            writelines(payloads)

        transport.write, transport.writelines = record, record_lines

    def at(self, subject: str) -> int:
        return bytes(self.data).find(f"PUB {subject} ".encode())


class SlowHolder:
    """A holder's focus.notify subject served by hand: it acks a FOREGROUND
    at once and keeps every NONE unacked until the test answers it."""

    def __init__(self, nc: Client, subjects: Subjects, holder: str) -> None:
        self.nc = nc
        self.subject = subjects.focus_notify(holder)
        self.unacked = Recorder()  # (FocusChange, Msg)
        self._table = RequestTable([FocusChange])

    async def start(self) -> SlowHolder:
        await self.nc.subscribe(self.subject, cb=self._serve)
        await settle(self.nc)
        return self

    async def _serve(self, msg: Msg) -> None:
        change = self._table.decode(msg.data)
        assert isinstance(change, FocusChange)
        if change.state is FocusState.NONE:
            self.unacked.add((change, msg))
        else:
            await msg.respond(encode(Ok()))


@contextlib.asynccontextmanager
async def patient_focus(
    nc: Client, site: str, nats_url: str, tmp_path: Path
) -> AsyncIterator[tuple[FocusService, InjectDesk]]:
    """focus waiting 30 s for an ack (a test sees whether it waited at all),
    with an InjectDesk standing in for the bridge's bridge.inject."""
    settings = FocusSettings(
        nats_url=nats_url,
        site=site,
        data_dir=tmp_path / "data",
        focus_notify_timeout_s=30.0,
        _env_file=None,  # type: ignore[call-arg]
    )
    async with running(FocusService, settings) as focus:
        yield focus, await InjectDesk(nc, focus).start()


def inject(inject_id: str, priority: InjectPriority = InjectPriority.NORMAL) -> m.Inject:
    return m.Inject(inject_id=inject_id, prompt="hello", priority=priority)


async def bridge_ready(nc: Client, subjects: Subjects, on_notice: Any = None) -> None:
    """The bridge renews ready; its notifications go to `on_notice` (None: nobody takes them)."""
    if on_notice is not None:
        await nc.subscribe(subjects.focus_notify("bridge"), cb=on_notice)
        await settle(nc)
    await request(nc, subjects.focus_rpc_of("bridge"), m.Renew(holder="bridge", ready=True))


async def test_the_bridges_own_notice_does_not_hold_back_run_inject(
    nc: Client, site: str, nats_url: str, tmp_path: Path
) -> None:
    subjects = Subjects(site)
    async with patient_focus(nc, site, nats_url, tmp_path) as (_focus, desk):
        held = Recorder()

        async def hold(msg: Msg) -> None:  # the bridge acks nothing until run_inject came
            held.add(msg)

        await bridge_ready(nc, subjects, hold)
        reply = asyncio.create_task(request(nc, subjects.focus_rpc_of("skill-host-a"), inject("i-1")))
        assert await desk.saved.wait_for(lambda _: True, timeout=10.0) == ("i-1", "i-1")
        assert not reply.done()  # focus still waits for the bridge's ack of its FOREGROUND
        notice = await held.wait_for(lambda _: True, timeout=10.0)
        await notice.respond(encode(Ok()))
        assert (await reply).status == "fired"


async def test_run_inject_still_waits_for_another_holder_to_hear_first(
    nc: Client, site: str, nats_url: str, tmp_path: Path
) -> None:
    """A preempting inject ends a skill's call: the skill acks its NONE before
    the bridge is asked to speak."""
    subjects = Subjects(site)
    async with patient_focus(nc, site, nats_url, tmp_path) as (_focus, desk):
        skill = await SlowHolder(nc, subjects, "skill-host-c").start()
        await bridge_ready(nc, subjects)
        claim = m.Acquire(holder="skill-host-c", channel=Channel.COMMS, interface="call")
        await request(nc, subjects.focus_rpc_of("skill-host-c"), claim)
        reply = asyncio.create_task(
            request(nc, subjects.focus_rpc_of("skill-host-d"), inject("i-2", InjectPriority.PREEMPT))
        )
        change, msg = await skill.unacked.wait_for(lambda _: True, timeout=10.0)
        assert change.reason == "preempted"
        assert desk.arrived.items == []  # focus waits for the skill's ack first
        await msg.respond(encode(Ok()))
        assert await desk.saved.wait_for(lambda _: True) == ("i-2", "i-2")
        assert (await reply).status == "fired"


async def test_run_inject_leaves_behind_the_state_write_without_waiting_for_its_ack(
    nc: Client, site: str, nats_url: str, tmp_path: Path
) -> None:
    subjects = Subjects(site)
    async with patient_focus(nc, site, nats_url, tmp_path) as (focus, desk):
        acked = Recorder()

        async def ack(msg: Msg) -> None:
            await msg.respond(encode(Ok()))
            acked.add(msg.subject)

        await bridge_ready(nc, subjects, ack)
        held = HeldWrites(focus)
        sent = SentBytes(focus.nc)
        reply = asyncio.create_task(request(nc, subjects.focus_rpc_of("skill-host-a"), inject("i-3")))
        # run_inject reaches the bridge while focus still waits for its write's ack …
        assert await desk.saved.wait_for(lambda _: True, timeout=10.0) == ("i-3", "i-3")
        assert held.stored.items == [KEY] and not held.release.is_set()
        # … the write went to the socket first …
        write, run = sent.at(f"$KV.{focus.settings.kv_bucket()}.{KEY}"), sent.at(subjects.bridge_inject())
        assert 0 <= write < run
        # … and run_inject went ahead of the events that only tell watchers.
        watchers = [sent.at(subjects.focus_event(kind)) for kind in ("activity", "inject")]
        assert all(run < at for at in watchers)
        # … and the caller hears only once the write is acknowledged: with the
        # bridge's notice acked and a later request answered, only the write holds it.
        await acked.wait_for(lambda _: True, timeout=10.0)
        await request(nc, subjects.focus_rpc_of("bridge"), m.SnapshotRequest())
        await nc.flush()
        assert not reply.done()
        held.release.set()
        assert (await asyncio.wait_for(reply, 10.0)).status == "fired"
