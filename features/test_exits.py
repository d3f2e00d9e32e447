"""Steps of exits.feature: ManagePositions.on_tick over the paper exchange's price ticks."""

from __future__ import annotations

from decimal import Decimal

from pytest_bdd import scenarios, then, when

from application.ports import OrderSide
from application.use_cases.settings import load_trader
from application.use_cases.strategies import SaveExitStrategy
from domain.errors import InvalidValue
from domain.events import ExitFilled, ExitOrderSubmitted
from domain.exit_plans import ExitPlan, TakeProfitLevel, resolve_exit_plan
from features.conftest import book_position, step
from features.world import World, dec

scenarios("exits.feature")

_REASON = {
    "TakeProfitHit": "take_profit",
    "StopLossHit": "stop_loss",
    "TrailingStopHit": "trailing_stop",
    "MaxHoldTimeReached": "max_hold",
}


@then(step("the exits of {user:Name}'s position in {ticker:Name} are:"))
def exits_are(world: World, user: str, ticker: str, datatable: list[list[str]]) -> None:
    header, *rows = datatable
    events = world.position_events(user, ticker)
    fills = [(i, r.event) for i, r in enumerate(events) if isinstance(r.event, ExitFilled)]
    assert [type(e).__name__ for _, e in fills] == [row[0] for row in rows]
    for (index, fill), row in zip(fills, rows, strict=True):
        expected = dict(zip(header, row, strict=True))
        assert fill.level == (None if expected["level"] == "-" else int(expected["level"]))
        assert fill.quantity == dec(expected["quantity"])
        assert fill.price == dec(expected["price"])
        assert fill.proceeds == dec(expected["proceeds"])
        assert fill.fee == dec(expected["fee"])
        assert fill.realised_pnl == dec(expected["realised P&L"])
        # Every fill answers the exit order submitted just before it, same id and size.
        submitted = events[index - 1].event
        assert isinstance(submitted, ExitOrderSubmitted)
        assert submitted.client_order_id == fill.client_order_id
        assert (submitted.reason, submitted.quantity) == (_REASON[expected["exit"]], fill.quantity)


@then(step(
    "{user:Name}'s position in {ticker:Name} is partially exited, holding {held:Dec}, with realised P&L {pnl:Dec}"
))
def partially_exited(world: World, user: str, ticker: str, held: Decimal, pnl: Decimal) -> None:
    position = world.position(user, ticker)
    assert position.status.value == "partially exited"
    assert (position.remaining, position.realised_pnl) == (held, pnl)
    view = book_position(world, user, ticker)
    assert (view.status, view.remaining, view.realised_pnl) == ("partially exited", held, pnl)
    assert "PositionClosed" not in [r.event.type_name for r in world.position_events(user, ticker)]


@then(step("{user:Name}'s position in {ticker:Name} is closed with realised P&L {pnl:Dec}"))
def closed_with(world: World, user: str, ticker: str, pnl: Decimal) -> None:
    events = world.position_events(user, ticker)
    assert events[-1].event.type_name == "PositionClosed", [r.event.type_name for r in events]
    assert events[-1].event.realised_pnl == pnl
    position = world.position(user, ticker)
    assert (position.status.value, position.remaining, position.realised_pnl) == ("closed", 0, pnl)
    view = book_position(world, user, ticker)
    assert (view.status, view.remaining, view.realised_pnl) == ("closed", 0, pnl)
    assert view.closed_at == events[-1].occurred_at


@then(
    step("PositionClosed records cost {cost:Dec}, proceeds {proceeds:Dec}, fees {fees:Dec} and realised P&L {pnl:Dec}")
)
def position_closed_totals(world: World, cost: Decimal, proceeds: Decimal, fees: Decimal, pnl: Decimal) -> None:
    (closed,) = world.events_named("PositionClosed")
    event = closed.event
    assert (event.total_cost, event.total_proceeds, event.total_fees, event.realised_pnl) == (cost, proceeds, fees, pnl)
    # Realised P&L is what came back, less exit fees, less what it cost (entry fee included).
    entry_fee = world.events_named("SnipeOrderFilled")[0].event.fee
    assert pnl == proceeds - (fees - entry_fee) - cost


@then(step("the exchange received sells of {ticker:Name}: {quantities}"))
def sells_of(world: World, ticker: str, quantities: str) -> None:
    sold = [dec(call.split()[2]) for call in world.paper_calls("sell", ticker)]
    assert sold == [dec(q) for q in quantities.split(",")]


@then(step("PositionPeakRaised was recorded at {prices}"))
def peak_raised(world: World, prices: str) -> None:
    peaks = [r.event.peak_price for r in world.events_named("PositionPeakRaised")]
    assert peaks == [dec(p) for p in prices.split(",")]


@then(step('the position of {user:Name} in {ticker:Name} follows the exit plan "{plan}"'))
def follows_plan(world: World, user: str, ticker: str, plan: str) -> None:
    expected = resolve_exit_plan(plan, world.trader(user).custom_exit_plans)
    assert world.target_events(user, ticker)[0].event.exit_plan == expected
    assert world.position_events(user, ticker)[0].event.exit_plan == expected
    assert world.position(user, ticker).exit_plan == expected


@then(step("ExitOrderFailed was recorded {count:d} times"))
def exit_failed_times(world: World, count: int) -> None:
    assert len(world.events_named("ExitOrderFailed")) == count


@then(step("the exchange holds exactly one sell order for {ticker:Name}"))
def one_sell_order(world: World, ticker: str) -> None:
    assert len(world.orders(OrderSide.SELL, ticker)) == 1


def _ladder(text: str) -> tuple[TakeProfitLevel, ...]:
    """`+10% sell 50%, +20% sell 50%`, or `none`."""
    levels = []
    for part in [] if text == "none" else [p.strip() for p in text.split(",")]:
        gain, share = part.split(" sell ")
        levels.append(TakeProfitLevel(dec(gain.strip("+%")), dec(share.strip("%"))))
    return tuple(levels)


@when(step('{user:Name} saves the exit plan "{name}" with take-profits "{ladder}" and a stop-loss of {stop:Dec}%'))
def saves_plan(world: World, user: str, name: str, ladder: str, stop: Decimal) -> None:
    world.begin_action()
    save = SaveExitStrategy(world.store, world.clock)
    world.attempt(lambda: world.run(save(user, ExitPlan(name, _ladder(ladder), stop))))


@then(step('the exit plan is refused because "{reason}"'))
def plan_refused(world: World, reason: str) -> None:
    assert isinstance(world.error, InvalidValue), world.error
    assert reason in str(world.error), str(world.error)


@then(step('{user:Name}\'s exit plan "{name}" is saved'))
def plan_saved(world: World, user: str, name: str) -> None:
    assert world.error is None, world.error
    assert name in world.run(load_trader(world.store, user)).custom_plans
