"""The agents over the in-process world: the strategy agent takes up snipes scheduled by
another process (the API) or before a restart, and starts each due snipe once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from application.agents import StrategyAgent
from application.use_cases.listings import EXECUTE_SNIPE
from tests.adapters.paper_support import LAUNCH
from tests.application.support import before_launch, world_at


async def test_strategy_agent_schedules_what_the_store_says_and_snipes_it_once() -> None:
    world = world_at(before_launch(10))
    target_id = await world.scheduled_target()  # recorded by another process: no job here yet
    spawned: list[asyncio.Task] = []

    def spawn(work, name: str) -> asyncio.Task:  # noqa: ANN001
        task = asyncio.ensure_future(work)
        spawned.append(task)
        return task

    agent = StrategyAgent(world.execute_snipe(), world.scheduler, world.scheduler, world.store, world.book,
                          world.clock, world.timing, spawn)
    assert await agent.tick() == "0 snipe(s) started, 0 in flight"
    [job] = world.scheduler.pending
    assert (job.kind, job.key, job.run_at) == (EXECUTE_SNIPE, target_id, LAUNCH - world.timing.prepare_ahead)
    await agent.tick()
    assert len(world.scheduler.pending) == 1  # not scheduled twice
    world.clock.set(LAUNCH - timedelta(seconds=1))
    assert (await agent.tick()).startswith("1 snipe(s) started")
    await world.clock.run_together(spawned)
    assert agent.outcomes[0].result.value == "filled"
    assert await agent.tick() == "0 snipe(s) started, 0 in flight"
    [buy] = world.order_calls()
    assert buy.startswith("buy")


class LosingScheduler:
    """The in-process scheduler standing in for a queue that can lose its jobs (Redis losing its
    data): `ensure` schedules again a job it no longer holds."""

    def __init__(self, inner) -> None:  # noqa: ANN001
        self.inner = inner
        self.looked: list[str] = []

    async def schedule(self, job) -> None:  # noqa: ANN001
        await self.inner.schedule(job)

    async def cancel(self, kind: str, key: str) -> None:
        await self.inner.cancel(kind, key)

    async def ensure(self, job) -> bool:  # noqa: ANN001
        self.looked.append(job.key)
        if any((j.kind, j.key) == (job.kind, job.key) for j in self.inner.pending):
            return False
        await self.inner.schedule(job)
        return True


async def test_strategy_agent_schedules_again_a_snipe_whose_job_was_lost_before_its_launch() -> None:
    world = world_at(before_launch(20 * 60))
    target_id = await world.scheduled_target()
    scheduler = LosingScheduler(world.scheduler)
    agent = StrategyAgent(world.execute_snipe(), world.scheduler, scheduler, world.store, world.book,
                          world.clock, world.timing, lambda work, name: asyncio.ensure_future(work))
    await agent.tick()
    assert scheduler.looked == [], "20 minutes before the launch is not yet near"
    await world.scheduler.cancel(EXECUTE_SNIPE, target_id)  # the queue lost it

    world.clock.set(before_launch(5 * 60))
    assert await agent.tick() == "0 snipe(s) started, 0 in flight, 1 lost snipe job(s) scheduled again"
    [job] = world.scheduler.pending
    assert (job.kind, job.key, job.run_at) == (EXECUTE_SNIPE, target_id, LAUNCH - world.timing.prepare_ahead)
    await agent.tick()
    assert scheduler.looked == [target_id], "looked at once a second, not every tick"
    world.clock.set(before_launch(5 * 60 - 1))
    assert await agent.tick() == "0 snipe(s) started, 0 in flight"  # held: not scheduled twice
    assert scheduler.looked == [target_id, target_id]

    world.clock.set(LAUNCH + world.timing.snipe_window + timedelta(seconds=1))
    await world.scheduler.cancel(EXECUTE_SNIPE, target_id)
    await agent.tick()
    assert len(scheduler.looked) == 2 and world.scheduler.pending == [], "its window closed: nothing to restore"
