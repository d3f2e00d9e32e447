"""Shared fixtures and steps of the acceptance suite.

pytest-bdd has no async steps: each scenario owns one event loop (the `run` fixture) and
every async use case is driven through it from the sync steps. pytest-asyncio's loop is
not involved.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import parse
import pytest
from pytest_bdd import given, parsers, then, when

from adapters.paper.exchange import Fault
from application.ports import OrderSide, TraderSettings
from application.trade_book import PositionView
from domain.events import ExitFilled, ExitOrderSubmitted
from domain.exit_plans import ExitPlan, TakeProfitLevel
from domain.risk import RiskProfile
from features.world import World, dec, names

# --- step parsing ----------------------------------------------------------------------------


@parse.with_pattern(r"(?:\d{4}-\d{2}-\d{2} )?\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?")
def _time(text: str) -> str:
    return text


@parse.with_pattern(r"-?\d+(?:\.\d+)?")
def _decimal(text: str) -> Decimal:
    return Decimal(text)


@parse.with_pattern(r"[A-Za-z0-9_.-]+")
def _name(text: str) -> str:
    return text


TYPES = {"Time": _time, "Dec": _decimal, "Name": _name}


def step(text: str) -> parsers.parse:
    """A parse-style step pattern with our types: {when:Time}, {amount:Dec}, {user:Name}."""
    return parsers.parse(text, extra_types=TYPES)


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def run() -> Iterator[Callable[[Awaitable[Any]], Any]]:
    """Run one coroutine to completion on this scenario's own event loop."""
    loop = asyncio.new_event_loop()
    try:
        yield loop.run_until_complete
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


@pytest.fixture
def world(run: Callable[[Awaitable[Any]], Any]) -> World:
    return World(run)


# --- time ------------------------------------------------------------------------------------


@given(step("it is {moment:Time} UTC"))
def it_is(world: World, moment: str) -> None:
    if " " in moment:
        world.day = world.at(moment).date()
    world.set_time(world.at(moment))


# --- listings on the calendar ---------------------------------------------------------------


@given(step("the calendar announces {ticker:Name} launching at {launch:Time}"))
def calendar_announces(world: World, ticker: str, launch: str) -> None:
    world.announce(ticker, world.now, world.at(launch))


@given(step("the calendar announced {ticker:Name} at {announced:Time}, launching at {launch:Time}"))
def calendar_announced_at(world: World, ticker: str, announced: str, launch: str) -> None:
    world.announce(ticker, world.at(announced), world.at(launch))


@given(step("{ticker:Name} reaches the ready state at {moment:Time}"))
def reaches_ready_state(world: World, ticker: str, moment: str) -> None:
    world.listing(ticker)["states"].append({"at": world.at(moment).isoformat(), "sts": 2, "st": 2, "tt": 4})


@given(step("{ticker:Name}'s symbol state is sts={sts:d} st={st:d} tt={tt:d} from {moment:Time}"))
def symbol_state_from(world: World, ticker: str, sts: int, st: int, tt: int, moment: str) -> None:
    world.listing(ticker)["states"].append({"at": world.at(moment).isoformat(), "sts": sts, "st": st, "tt": tt})


@given(step("{ticker:Name} opens {delay:d} ms after its launch"))
def opens_late_ms(world: World, ticker: str, delay: int) -> None:
    world.listing(ticker)["open_delay_ms"] = delay


@given(step("{ticker:Name} opens {delay:d} s after its launch"))
def opens_late_s(world: World, ticker: str, delay: int) -> None:
    world.listing(ticker)["open_delay_ms"] = delay * 1000


@given(step("{ticker:Name} trades at {price:Dec} from its opening"))
def trades_flat(world: World, ticker: str, price: Decimal) -> None:
    world.listing(ticker)["prices"] = [{"t": "0", "price": str(price)}]


@given(step("{ticker:Name} trades at these prices after opening:"))
def trades_at(world: World, ticker: str, datatable: list[list[str]]) -> None:
    header, *rows = datatable
    assert header == ["seconds", "price"], header
    world.listing(ticker)["prices"] = [{"t": s, "price": p} for s, p in rows]


@given(step("{ticker:Name} quantities have {scale:d} decimal places"))
def quantity_scale(world: World, ticker: str, scale: int) -> None:
    world.listing(ticker)["quantity_scale"] = scale


@given(step("the exchange charges a taker fee of {fee:Dec}"))
def taker_fee(world: World, fee: Decimal) -> None:
    world.taker_fee = str(fee)


@given(step("the exchange answers the next order call with {fault:w}"))
def next_order_fault(world: World, fault: str) -> None:
    world.paper.faults.append(Fault[fault])


# --- traders ---------------------------------------------------------------------------------


@given(step('trader "{user:Name}" snipes {amount:Dec} USDT per listing with the "{plan}" exit plan'))
def trader_with_plan(world: World, user: str, amount: Decimal, plan: str) -> None:
    world.put_trader(TraderSettings(user_id=user, quote_amount=amount, exit_strategy=plan))


@given(step('trader "{user:Name}" snipes {amount:Dec} USDT per listing'))
def trader(world: World, user: str, amount: Decimal) -> None:
    world.put_trader(TraderSettings(user_id=user, quote_amount=amount))


@given(step('trader "{user:Name}" snipes {amount:Dec} {asset:Name} per listing in {quote:Name}'))
def trader_in_quote(world: World, user: str, amount: Decimal, asset: str, quote: str) -> None:
    assert asset == quote
    risk = replace(TraderSettings(user).risk, allowed_quote_assets=(quote,))
    world.put_trader(TraderSettings(user_id=user, quote_amount=amount, quote_asset=quote, risk=risk))


@given(step("{ticker:Name} is quoted in {quote:Name}"))
def quoted_in(world: World, ticker: str, quote: str) -> None:
    world.listing(ticker)["quote_asset"] = quote


@given(step("{user:Name} snipes {amount:Dec} USDT per listing"))
def trader_amount(world: World, user: str, amount: Decimal) -> None:
    world.update_trader(user, quote_amount=amount)


@given(step('{user:Name}\'s exit plan is "{plan}"'))
def trader_exit_plan(world: World, user: str, plan: str) -> None:
    world.update_trader(user, exit_strategy=plan)


@given(step('{user:Name} defines the exit plan "{plan}":'))
def trader_defines_plan(world: World, user: str, plan: str, datatable: list[list[str]]) -> None:
    """Rows: `take profit | +30% | sell 50%`, `stop loss | 8%`, `trailing stop | 5%`, `max hold | 600 s`."""
    levels, stop, trailing, hold = [], None, None, None
    for row in datatable:
        kind, *values = [c.strip() for c in row]
        if kind == "take profit":
            gain, share = values
            levels.append(TakeProfitLevel(dec(gain.strip("+%")), dec(share.removeprefix("sell").strip(" %"))))
        elif kind == "stop loss":
            stop = dec(values[0].strip("-%"))
        elif kind == "trailing stop":
            trailing = dec(values[0].strip("%"))
        elif kind == "max hold":
            hold = int(values[0].removesuffix("s").strip())
        else:
            raise AssertionError(f"unknown exit plan row: {row}")
    assert stop is not None, "an exit plan needs a stop loss row"
    settings = world.trader(user)
    custom = {**settings.custom_exit_plans, plan: ExitPlan(plan, tuple(levels), stop, trailing, hold)}
    world.update_trader(user, custom_exit_plans=custom)


@given(step("{user:Name}'s risk limits are:"))
def trader_risk(world: World, user: str, datatable: list[list[str]]) -> None:
    limits = {k.strip(): v.strip() for k, v in datatable}
    profile = RiskProfile(
        max_quote_per_snipe=dec(limits.pop("max quote per snipe")),
        max_concurrent_positions=int(limits.pop("max concurrent positions")),
        max_daily_loss=dec(limits.pop("max daily loss")),
        max_total_exposure=dec(limits.pop("max total exposure")),
    )
    assert not limits, f"unknown risk limits: {limits}"
    world.update_trader(user, risk=profile)


@given(step("{user:Name} only snipes {tickers}"))
def trader_only_snipes(world: World, user: str, tickers: str) -> None:
    world.update_trader(user, only_tickers=frozenset(t.strip() for t in tickers.split(",")))


@given(step("{user:Name} trades live"))
def trader_live(world: World, user: str) -> None:
    world.update_trader(user, risk=replace(world.trader(user).risk, live=True))


@given(step("{user:Name} has turned live trading off"))
def trader_live_off(world: World, user: str) -> None:
    world.update_trader(user, risk=replace(world.trader(user).risk, live=False))


@given(step("{user:Name} wants a confidence of at least {confidence:Dec}"))
def trader_min_confidence(world: World, user: str, confidence: Decimal) -> None:
    world.update_trader(user, min_confidence=confidence)


# --- the flow, step by step ------------------------------------------------------------------


@given("the calendar has been synced")
def calendar_has_been_synced(world: World) -> None:
    world.sync()


@when("the calendar is synced")
@when("the calendar is synced again")
def calendar_is_synced(world: World) -> None:
    world.begin_action()
    world.result = world.sync()


@when(step("the symbol states are polled at {moment:Time}"))
def states_polled(world: World, moment: str) -> None:
    world.set_time(world.at(moment))
    world.begin_action()
    world.result = world.poll_states()


@given(step("{user:Name}'s snipe of {ticker:Name} was scheduled at {moment:Time}"))
def snipe_was_scheduled(world: World, user: str, ticker: str, moment: str) -> None:
    world.set_time(world.at(moment))
    world.schedule_snipe(user, ticker)


@given(step("{user:Name}'s snipe of {ticker:Name} has filled"))
def snipe_has_filled(world: World, user: str, ticker: str) -> None:
    world.schedule_snipe(user, ticker)
    job = world.take_job(user, ticker)
    outcome = world.execute(job.key)
    assert outcome.result.value == "filled", outcome
    world.ticks_from(job.run_at)


@when(step("{user:Name}'s snipe of {ticker:Name} runs at its scheduled time"))
def snipe_runs(world: World, user: str, ticker: str) -> None:
    job = world.take_job(user, ticker)
    world.begin_action()
    world.execute(job.key)


@when(step("{ticker:Name}'s price ticks arrive until {moment:Time}"))
def price_ticks_until(world: World, ticker: str, moment: str) -> None:
    world.begin_action()
    world.play_ticks(world.at(moment))


@given(step("the worker has run until {moment:Time}"))
@when(step("the worker runs until {moment:Time}"))
def worker_runs_until(world: World, moment: str) -> None:
    world.begin_action()
    world.play_until(world.at(moment))


# --- what the history says ---------------------------------------------------------------------


@then(step("{user:Name}'s snipe of {ticker:Name} is {status:w}"))
def snipe_status(world: World, user: str, ticker: str, status: str) -> None:
    # Both the aggregate, folded from its stream, and the trade book must say so.
    assert world.target(user, ticker).status.value == status
    world.run(world.book.catch_up(world.store))
    assert world.book.targets[world.target_id(user, ticker)].status == status


@then(step("{user:Name}'s snipe of {ticker:Name} recorded, in order:"))
def snipe_recorded(world: World, user: str, ticker: str, datatable: list[list[str]]) -> None:
    assert names(world.target_events(user, ticker)) == [row[0] for row in datatable]


@then(step("{user:Name}'s snipe of {ticker:Name} failed because {reason}"))
def snipe_failed_because(world: World, user: str, ticker: str, reason: str) -> None:
    events = world.target_events(user, ticker)
    assert events[-1].event.type_name == "SnipeFailed", names(events)
    assert reason.strip('"') in events[-1].event.reason, events[-1].event.reason
    assert world.target(user, ticker).status.value == "failed"


@then(step("no buy was sent for {ticker:Name}"))
def no_buy_sent(world: World, ticker: str) -> None:
    assert world.paper_calls("buy", ticker) == []
    assert world.orders(OrderSide.BUY, ticker) == []


@then(step("the exchange holds exactly one buy order for {ticker:Name}"))
def exactly_one_buy_order(world: World, ticker: str) -> None:
    orders = world.orders(OrderSide.BUY, ticker)
    assert len(orders) == 1, orders


@then(step("{user:Name} holds no position in {ticker:Name}"))
def holds_no_position(world: World, user: str, ticker: str) -> None:
    assert world.position_events(user, ticker) == []
    assert world.position_id(user, ticker) not in world.book.positions


@then(step("nothing was recorded"))
def nothing_recorded(world: World) -> None:
    assert world.events_since_mark() == []


def book_position(world: World, user: str, ticker: str) -> PositionView:
    """The trade book's view of a position, caught up with the store."""
    world.run(world.book.catch_up(world.store))
    return world.book.positions[world.position_id(user, ticker)]


@then(step("{user:Name}'s position in {ticker:Name} is still open with no exit order"))
def still_open(world: World, user: str, ticker: str) -> None:
    events = world.position_events(user, ticker)
    assert not any(isinstance(r.event, ExitOrderSubmitted | ExitFilled) for r in events), events
    position = world.position(user, ticker)
    assert position.status.value == "open" and position.remaining == position.quantity
    assert book_position(world, user, ticker).status == "open"
    assert world.paper_calls("sell", ticker) == []


# --- the emergency stop ------------------------------------------------------------------------


def activate_stop(world: World, scope: str, reason: str, by: str) -> None:
    world.result = world.run(world.activate_stop()(scope, reason, by))


def clear_stop(world: World, scope: str, by: str) -> None:
    world.run(world.clear_stop()(scope, by))


@given(step("{person:Name} activated the emergency stop for {scope:Name}"))
def stop_was_activated(world: World, person: str, scope: str) -> None:
    activate_stop(world, scope, "drill", person)


@given(step("{person:Name} activated and cleared the emergency stop for {scope:Name}"))
def stop_was_activated_and_cleared(world: World, person: str, scope: str) -> None:
    activate_stop(world, scope, "drill", person)
    clear_stop(world, scope, person)
