"""A focus holder (or observer) in its own process, for end-to-end tests.

    python -m support.focus_holder --nats URL --site SITE --holder NAME [--follow]

It runs a FocusClient for NAME (or, with --follow, a FocusFollower) and
speaks JSON lines: commands on stdin (`{"id": 1, "op": "acquire", ...}`),
replies and reports on stdout (`{"id": 1, "result": {...}}`, `{"report":
"focus", ...}`). `HolderProcess` drives it from a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import nats

from huxley_cli.identities import connection_env
from huxley_runtime.focus_client import ActivityStatus, FocusClient, FocusFollower
from huxley_runtime.logging import configure_logging
from huxley_wire.errors import WireError
from huxley_wire.messages import focus as m
from huxley_wire.messages.focus import (
    ActivityMeta,
    Channel,
    ContentType,
    EndReason,
    FocusChange,
    InjectPriority,
)
from huxley_wire.permissions import skill_identity
from huxley_wire.subjects import Subjects
from support.auth import store
from support.focus_peers import Recorder

TESTS = Path(__file__).resolve().parents[1]


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Reporter:
    """The FocusHandler: every call becomes a report line."""

    def __init__(self, hook_inject: str | None) -> None:
        self.hook_inject = hook_inject
        self.client: FocusClient | None = None
        self.tasks: set[asyncio.Task[Any]] = set()

    async def on_focus(self, change: FocusChange) -> None:
        emit({"report": "focus", **change.model_dump(mode="json")})

    async def on_patience_expired(self, activity_id: str) -> None:
        emit({"report": "patience", "activity_id": activity_id})
        if self.hook_inject and self.client is not None:
            # Scheduled, not awaited: the reference's rule for focus callbacks.
            task = asyncio.get_running_loop().create_task(
                self.client.inject(self.hook_inject, priority=InjectPriority.BLOCK_BEHIND_COMMS)
            )
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def on_effect_dropped(self, effect_id: str, reason: str) -> None:
        emit({"report": "dropped", "effect_id": effect_id, "reason": reason})


async def serve(args: argparse.Namespace) -> None:
    nc = await nats.connect(
        args.nats, name=f"test-{args.holder}", user_credentials=args.creds, inbox_prefix=args.inbox_prefix
    )
    subjects = Subjects(args.site)
    follower: FocusFollower | None = None
    client: FocusClient | None = None
    if args.follow:

        def changed(status: ActivityStatus) -> None:
            emit(
                {
                    "report": "follow",
                    "activity_id": status.activity_id,
                    "channel": status.channel.value,
                    "state": str(status.state),
                    "gain": status.gain,
                    "seq": status.seq,
                }
            )

        follower = FocusFollower(nc, subjects, holder=args.holder, on_change=changed)
        await follower.start()
    else:
        reporter = Reporter(args.hook_inject)
        client = FocusClient(nc, subjects, args.holder, reporter)
        reporter.client = client
        await client.start()
    emit({"report": "ready", "pid": os.getpid()})

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    running: set[asyncio.Task[None]] = set()
    while line := await reader.readline():
        command = json.loads(line)
        if command["op"] == "stop":
            break
        task = loop.create_task(run(client, command))
        running.add(task)
        task.add_done_callback(running.discard)
    if client is not None:
        await client.stop()
    if follower is not None:
        await follower.stop()
    await nc.drain()


async def run(client: FocusClient | None, command: dict[str, Any]) -> None:
    assert client is not None, "commands need a holder, not a follower"
    op = command.pop("op")
    ident = command.pop("id")
    try:
        result: Any
        if op == "acquire":
            result = await client.acquire(
                Channel(command["channel"]),
                command["interface"],
                content_type=ContentType(command.get("content_type", "nonmixable")),
                patience_ms=command.get("patience_ms", 0),
                meta=ActivityMeta.model_validate(command.get("meta", {})),
            )
        elif op == "release":
            await client.release(command["activity_id"], EndReason(command.get("reason", "released")))
            result = None
        elif op == "inject":
            result = await client.inject(
                command["prompt"],
                priority=InjectPriority(command.get("priority", "normal")),
                dedup_key=command.get("dedup_key"),
                wait=command.get("wait", False),
                inject_id=command.get("inject_id"),
                skill=command.get("skill"),
            )
        elif op == "turn_end":
            pending = command.get("pending")
            result = await client.turn_end(
                command["activity_id"],
                pending=m.PendingEffect.model_validate(pending) if pending else None,
            )
        elif op == "interrupt":
            result = await client.interrupt(claim_grace_ms=command.get("claim_grace_ms", 0))
        else:
            raise ValueError(f"unknown op {op}")
    except WireError as exc:
        emit({"id": ident, "error": {"code": str(exc.code), "message": exc.message}})
        return
    emit({"id": ident, "result": result.model_dump(mode="json") if result is not None else None})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nats", required=True)
    parser.add_argument("--site", required=True)
    parser.add_argument("--holder", required=True)
    parser.add_argument("--follow", action="store_true")
    parser.add_argument("--hook-inject", default=None)
    parser.add_argument("--creds", required=True)
    parser.add_argument("--inbox-prefix", required=True)
    args = parser.parse_args()
    configure_logging("focus-holder", args.site, json=True, level="warning", stream=sys.stderr)
    asyncio.run(serve(args))


class HolderProcess:
    """Drives `support.focus_holder` from a test: `call()` a command and get
    its result; `reports` records every report line."""

    def __init__(
        self, nats_url: str, site: str, holder: str, *, follow: bool = False, hook_inject: str | None = None
    ):
        self.argv = [sys.executable, "-m", "support.focus_holder", "--nats", nats_url, "--site", site]
        self.argv += ["--holder", holder]
        # A holder is a skill to focus: it connects as a skill identity named
        # after the holder (focus.rpc.<holder> is granted to that name only).
        identity = connection_env(store(), skill_identity(site, "basic", (holder,), holder), int(time.time()))
        self.argv += ["--creds", identity["HUXLEY_NATS_CREDS"]]
        self.argv += ["--inbox-prefix", identity["HUXLEY_NATS_INBOX_PREFIX"]]
        if follow:
            self.argv.append("--follow")
        if hook_inject:
            self.argv += ["--hook-inject", hook_inject]
        self.holder = holder
        self.reports = Recorder()
        self.replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._next = 0

    async def start(self) -> HolderProcess:
        env = {**os.environ, "PYTHONPATH": str(TESTS), "PYTHONUNBUFFERED": "1"}
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
            cwd=TESTS.parent,
            start_new_session=True,
        )
        self._reader = asyncio.create_task(self._read())
        await self.reports.wait_for(lambda r: r.get("report") == "ready", timeout=30)
        return self

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        while line := await self.process.stdout.readline():
            obj = json.loads(line)
            if "id" in obj:
                future = self.replies.pop(obj["id"], None)
                if future is not None and not future.done():
                    future.set_result(obj)
            else:
                self.reports.add(obj)

    async def call(self, op: str, timeout: float = 30.0, **args: Any) -> Any:
        """Run a command in the process; its result, or WireError."""
        assert self.process is not None and self.process.stdin is not None
        self._next += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.replies[self._next] = future
        self.process.stdin.write((json.dumps({"id": self._next, "op": op, **args}) + "\n").encode())
        await self.process.stdin.drain()
        reply = await asyncio.wait_for(future, timeout)
        if "error" in reply:
            raise WireError(reply["error"]["code"], reply["error"]["message"])
        return reply["result"]

    async def wait_focus(self, activity_id: str, state: str, timeout: float = 15.0) -> dict[str, Any]:
        report: dict[str, Any] = await self.reports.wait_for(
            lambda r: r.get("report") == "focus" and r["activity_id"] == activity_id and r["state"] == state,
            timeout,
        )
        return report

    def states(self, activity_id: str) -> list[str]:
        return [
            r["state"]
            for r in self.reports.items
            if r.get("report") in ("focus", "follow") and r["activity_id"] == activity_id
        ]

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            os.kill(self.process.pid, signal.SIGKILL)

    async def stop(self) -> None:
        if self.process is None:
            return
        if self.process.returncode is None and self.process.stdin is not None:
            try:
                self.process.stdin.write(b'{"op": "stop"}\n')
                await self.process.stdin.drain()
                await asyncio.wait_for(self.process.wait(), 10)
            except (TimeoutError, ConnectionError):
                self.kill()
        await self.process.wait()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)


if __name__ == "__main__":
    main()
