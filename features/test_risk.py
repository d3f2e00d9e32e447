"""Steps of risk.feature: ExecuteSnipe's pre-trade risk check against the trade book."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from pytest_bdd import given, scenarios, then

from features.conftest import step
from features.world import World

scenarios("risk.feature")


def _earlier_snipes(world: World, user: str, tickers: dict[str, list[dict[str, str]]]) -> None:
    """Let the worker snipe these listings for `user` alone, launching 10 min from now,
    and play until a minute after the last launch."""
    start = world.now
    for i, (ticker, prices) in enumerate(tickers.items()):
        world.announce(ticker, start, start + timedelta(minutes=10 + i))
        world.listing(ticker)["states"].append({"at": start.isoformat(), "sts": 2, "st": 2, "tt": 4})
        world.listing(ticker)["prices"] = prices
    # The other traders sit these listings out, so only `user`'s book changes.
    others = [t for t in world.run(world.traders.auto_snipers()) if t.user_id != user]
    for other in others:
        world.update_trader(other.user_id, skip_tickers=other.skip_tickers | set(tickers))
    world.play_until(start + timedelta(minutes=12 + len(tickers)))
    for other in others:
        world.put_trader(other)
    world.run(world.book.catch_up(world.store))


@given(step("{user:Name} already holds {count:d} open positions"))
@given(step("{user:Name} already holds {count:d} open position"))
def holds_open_positions(world: World, user: str, count: int) -> None:
    flat = [{"t": "0", "price": "1"}]
    _earlier_snipes(world, user, {f"OLD{i}": flat for i in range(1, count + 1)})
    assert len(world.book.open_positions(user)) == count


@given(step("{user:Name} closed a position at a loss of {loss:Dec} USDT today"))
def closed_at_loss(world: World, user: str, loss: Decimal) -> None:
    # Entry at 1, then -20 %: the "balanced" stop-loss (-10 %) sells everything at 0.8.
    _earlier_snipes(world, user, {"LOSS": [{"t": "0", "price": "1"}, {"t": "60", "price": "0.8"}]})
    closed = [p for p in world.book.positions.values() if p.user_id == user and p.status == "closed"]
    assert [p.realised_pnl for p in closed] == [-loss]
    assert world.book.realised_pnl_on(user, world.day) == -loss
    assert world.book.open_positions(user) == []


@then(step('{user:Name}\'s snipe of {ticker:Name} was refused by the risk limits because "{reason}"'))
def refused_by_risk(world: World, user: str, ticker: str, reason: str) -> None:
    events = world.target_events(user, ticker)
    assert [r.event.type_name for r in events][-2:] == ["RiskCheckFailed", "SnipeFailed"], events
    risk, failed = events[-2].event, events[-1].event
    assert any(reason in r for r in risk.reasons), risk.reasons
    assert failed.reason.startswith("refused by risk limits: ") and reason in failed.reason
    assert "SnipeOrderSubmitted" not in [r.event.type_name for r in events]
    assert world.target(user, ticker).status.value == "failed"
    world.run(world.book.catch_up(world.store))
    assert world.book.targets[world.target_id(user, ticker)].reason == failed.reason


@then("no RiskCheckFailed was recorded")
def no_risk_check_failed(world: World) -> None:
    assert world.events_named("RiskCheckFailed") == []


@then(step("the exchange received {count:d} buy for {ticker:Name}"))
def buys_for(world: World, count: int, ticker: str) -> None:
    assert len(world.paper_calls("buy", ticker)) == count


@then(step("RiskCheckFailed names {count:d} reasons"))
def risk_reasons(world: World, count: int) -> None:
    (failed,) = world.events_named("RiskCheckFailed")
    assert len(failed.event.reasons) == count, failed.event.reasons
