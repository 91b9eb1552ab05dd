"""The faults: which process, which signal, when — drawn from the run's seed
— and the time each took to heal.

Kinds:
- `kill`: SIGKILL to the process group; the supervisor restarts it.
- `pause`: SIGSTOP, then SIGCONT after a few seconds (a frozen machine, a
  debugger, swap): the process must pick up where it was.
- `freeze`: SIGSTOP left alone, for the supervisor's health watchdog to find
  and kill (services only: nothing watches nats-server's liveness).

Faults are one at a time: the next one is drawn a random gap after the
previous one healed (or was given up on), so each recovery time is that
fault's own. Recovery ends when the service's health answers ok again
(after a kill or a freeze, from a new instance); for nats-server, when every
service answers ok.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from dataclasses import asdict, dataclass
from typing import Any

from bench.chaos.stack import SERVICES, ChaosStack

TARGETS = [*SERVICES, "nats-server"]
KINDS = ("kill", "pause", "freeze")
GIVE_UP_S = 90.0


@dataclass(frozen=True)
class Fault:
    index: int
    target: str
    kind: str
    hold_s: float  # pause: how long stopped
    gap_s: float  # wait before this fault


def plan(faults: int, rng: random.Random) -> list[Fault]:
    """A fault schedule (pure: the same seed gives the same plan)."""
    chosen = []
    for index in range(faults):
        target = rng.choice(TARGETS)
        kinds = KINDS if target != "nats-server" else ("kill", "pause")
        kind = rng.choices(kinds, weights=[5, 3, 2][: len(kinds)])[0]
        chosen.append(
            Fault(index, target, kind, round(rng.uniform(1.0, 5.0), 2), round(rng.uniform(1.0, 6.0), 2))
        )
    return chosen


@dataclass
class Outcome:
    fault: Fault
    at: float  # time.monotonic() of the signal
    pid: int | None
    recovered: bool
    recovery_s: float | None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self.fault), "pid": self.pid, "recovered": self.recovered,
                "recovery_s": self.recovery_s, "note": self.note}  # fmt: skip


def _signal_group(pid: int, sig: int) -> bool:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _instance_of(stack: ChaosStack, target: str) -> str | None:
    assert stack.supervisor is not None
    for child in stack.supervisor.children:
        if child.spec.name == target:
            return child.instance
    return None


async def _recovered(stack: ChaosStack, fault: Fault, old_instance: str | None) -> bool:
    if fault.target == "nats-server":
        return await stack.all_healthy()
    if not await stack.healthy(fault.target):
        return False
    if fault.kind == "pause":
        return True
    health = await stack.health(fault.target)
    return health is not None and health.instance != old_instance


async def inflict(stack: ChaosStack, fault: Fault) -> Outcome:
    pid = stack.pid_of(fault.target)
    old_instance = _instance_of(stack, fault.target)
    at = time.monotonic()
    if pid is None:
        return Outcome(fault, at, None, False, None, "no process to signal (still restarting)")
    sig = signal.SIGKILL if fault.kind == "kill" else signal.SIGSTOP
    # nats-server is a process of its own session and group, like each service.
    _signal_group(pid, sig)
    resume: asyncio.Task[None] | None = None
    if fault.kind == "pause":

        async def cont() -> None:
            await asyncio.sleep(fault.hold_s)
            _signal_group(pid, signal.SIGCONT)

        resume = asyncio.create_task(cont())
    note = ""
    while True:
        if (resume is None or resume.done()) and await _recovered(stack, fault, old_instance):
            break
        if time.monotonic() - at > GIVE_UP_S:
            note = f"not healthy after {GIVE_UP_S:g} s; SIGCONT and SIGKILL sent"
            _signal_group(pid, signal.SIGCONT)
            _signal_group(pid, signal.SIGKILL)
            break
        await asyncio.sleep(0.1)
    if resume is not None:
        with contextlib.suppress(asyncio.CancelledError):
            await resume
    elapsed = time.monotonic() - at
    recovered = not note
    return Outcome(fault, at, pid, recovered, round(elapsed, 3) if recovered else None, note)
