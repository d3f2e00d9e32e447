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
