"""Orders go to the account their target chose: a paper target never reaches a live account,
a live target on a paper-only worker is refused with its reason, and exits follow their buy."""

from __future__ import annotations

from datetime import timedelta

from adapters.paper.exchange import PaperExchange
from application.accounts import PaperOrLive
from application.ports import PriceTick, TraderSettings
from application.use_cases.positions import ManagePositions
from application.use_cases.snipe import ExecuteSnipe, SnipeResult
from domain.target import TargetStatus, target_stream
from tests.adapters.paper_support import LAUNCH, listing
from tests.application.support import NEW, World, before_launch, live_profile, world_at


def routed(world: World, live: PaperExchange | None) -> tuple[ExecuteSnipe, ManagePositions]:
    accounts = PaperOrLive(world.paper, live)
    execute = ExecuteSnipe(world.store, world.paper, world.paper, world.traders, world.locks, world.clock, world.book,
                           world.timing, accounts=accounts)
    return execute, ManagePositions(world.store, world.paper, world.clock, world.book, accounts)


def orders(exchange: PaperExchange) -> list[str]:
    return [c.split()[0] for c in exchange.calls if c.split()[0] in ("buy", "sell")]


async def test_a_paper_target_fills_on_paper_even_on_a_live_worker() -> None:
    world = world_at(before_launch(), traders=[TraderSettings("alice", risk=live_profile())])
    live = PaperExchange(world.scenario, world.clock)  # stands in for the real account
    execute, _ = routed(world, live)
    tid = await world.scheduled_target(live=False)
    assert (await execute(tid)).result is SnipeResult.FILLED
    assert orders(world.paper) == ["buy"] and orders(live) == []


async def test_a_live_target_goes_to_the_live_account_and_so_do_its_exits() -> None:
    prices = [{"t": "0", "price": "0.5"}, {"t": "60", "price": "0.2"}]
    world = world_at(before_launch(), traders=[TraderSettings("alice", risk=live_profile())],
                     listings=[listing(prices=prices)])
    live = PaperExchange(world.scenario, world.clock)
    execute, manage = routed(world, live)
    tid = await world.scheduled_target(live=True)
    [outcome] = await world.clock.run_together([execute(tid)])
    assert outcome.result is SnipeResult.FILLED
    world.clock.set(LAUNCH + timedelta(seconds=61))
    exits = await manage.on_tick(PriceTick(NEW, await live.last_price(NEW), world.clock.now()))
    assert exits and exits[0].filled  # the stop-loss sold on the live account
    assert orders(live) == ["buy", "sell"] and orders(world.paper) == []


async def test_a_live_target_on_a_paper_only_worker_is_refused_with_its_reason() -> None:
    world = world_at(before_launch(), traders=[TraderSettings("alice", risk=live_profile())])
    execute, _ = routed(world, None)
    tid = await world.scheduled_target(live=True)
    outcome = await execute(tid)
    assert outcome.result is SnipeResult.FAILED and "paper only" in outcome.detail
    assert orders(world.paper) == [] and world.paper.calls == []
    assert (await world.target(tid)).status is TargetStatus.FAILED
    [failed] = [r.event for r in await world.store.load(target_stream(tid)) if type(r.event).__name__ == "SnipeFailed"]
    assert "paper only" in failed.reason
