"""The doorbell skill, tested with huxley_sdk.testing only (no runtime)."""

from __future__ import annotations

import asyncio
import json

from huxley_sdk import InjectPriority
from huxley_sdk.testing import (
    ClientEvents,
    MemoryStorage,
    RecordingInjector,
    RecordingLogger,
    make_test_context,
)
from huxley_skill_doorbell import DoorbellSkill


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def started(config=None, storage=None, language="en"):
    clock, storage = Clock(), storage or MemoryStorage()
    injector, client, logger = RecordingInjector(), ClientEvents(), RecordingLogger()
    skill = DoorbellSkill(clock=clock)
    ctx = make_test_context(
        name="doorbell",
        config=config or {},
        storage=storage,
        inject=injector,
        client_events=client,
        logger=logger,
        language=language,
    )
    await skill.setup(ctx)
    return skill, clock, storage, injector, client, logger


async def test_a_ring_from_the_client_is_counted_persisted_and_announced():
    skill, _, storage, injector, client, logger = await started()
    await client.send("doorbell.ring", {"who": "the postman"})
    assert storage.data["visit_count"] == "1" and "last_ring" in storage.data
    [call] = injector.calls
    assert call.priority is InjectPriority.BLOCK_BEHIND_COMMS and call.dedup_key == "doorbell"
    assert call.prompt.startswith("Tell the user:") and "the postman" in call.prompt
    assert client.emitted == [("doorbell.rang", {"visits": 1, "who": "the postman"})]
    assert logger.named("ring")[0].fields["visit_count"] == 1
    assert json.loads((await skill.handle("doorbell_visits", {})).output)["visits"] == 1
    assert "rung 1 times" in skill.prompt_context()


async def test_rings_in_the_quiet_period_count_once():
    _, clock, storage, injector, client, _ = await started({"quiet_s": 10})
    await client.send("doorbell.ring")
    clock.now += 3
    await client.send("doorbell.ring")
    clock.now += 10
    await client.send("doorbell.ring")
    assert storage.data["visit_count"] == "2" and len(injector.calls) == 2


async def test_the_count_survives_a_restart():
    storage = MemoryStorage({"visit_count": "41"})
    skill, _, storage, _, client, _ = await started(storage=storage)
    await client.send("doorbell.ring")
    assert storage.data["visit_count"] == "42"
    assert json.loads((await skill.handle("doorbell_visits", {})).output)["visits"] == 42


async def test_config_priority_prompt_and_language():
    _, _, _, injector, client, _ = await started(
        {"priority": "preempt", "announce_prompt": "Tell the user: visit number {visits}."}
    )
    await client.send("doorbell.ring")
    assert injector.calls[0].priority is InjectPriority.PREEMPT
    assert injector.calls[0].prompt == "Tell the user: visit number 1."
    skill, _, _, injector, client, _ = await started(language="es")
    await client.send("doorbell.ring")
    assert "puerta" in injector.calls[0].prompt and skill.tools[0].description.startswith("Cuántas")


async def test_the_simulated_doorbell_rings_on_its_own():
    rang = asyncio.Event()
    sleeps: list[float] = []

    async def fast_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) > 2:
            rang.set()
            await asyncio.Event().wait()  # stop after two rings
        await asyncio.sleep(0)

    clock, storage, injector = Clock(), MemoryStorage(), RecordingInjector()
    skill = DoorbellSkill(clock=clock, sleep=fast_sleep)
    tasks = []

    def background_task(name, factory, **options):
        tasks.append(asyncio.create_task(factory()))
        from huxley_sdk import BackgroundTaskHandle

        return BackgroundTaskHandle(name=name, _cancel=tasks[-1].cancel)

    ctx = make_test_context(
        config={"ring_every_s": 60, "quiet_s": 0},
        storage=storage,
        inject=injector,
        background_task=background_task,
    )
    await skill.setup(ctx)
    await asyncio.wait_for(rang.wait(), 5)
    assert sleeps[:2] == [60, 60] and len(injector.calls) == 2 and storage.data["visit_count"] == "2"
    for task in tasks:
        task.cancel()
