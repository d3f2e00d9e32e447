"""Steps of snipe.feature: ExecuteSnipe against the paper exchange, with faults injected."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from pytest_bdd import given, scenarios, then, when

from application.ports import OrderSide
from application.trade_book import TradeBook
from application.use_cases.snipe import SnipeResult
from features.conftest import step
from features.world import DyingExchange, WorkerDied, World

scenarios("snipe.feature")

_COUNT = {"no": 0, "one": 1}


def _listed(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _only(world: World, type_name: str):  # noqa: ANN202
    found = world.events_named(type_name)
    assert len(found) == 1, found
    return found[0]


@when(step("{user:Name}'s snipe of {ticker:Name} runs again"))
def snipe_runs_again(world: World, user: str, ticker: str) -> None:
    world.begin_action()
    world.execute(world.target_id(user, ticker))


@when(step("{user:Name}'s snipe of {ticker:Name} runs late, at {moment:Time}"))
def snipe_runs_late(world: World, user: str, ticker: str, moment: str) -> None:
    job = world.take_job(user, ticker)
    assert world.at(moment) > job.run_at
    world.set_time(world.at(moment))
    world.begin_action()
    world.execute(job.key)


@when(step("two workers run {user:Name}'s snipe of {ticker:Name} together at its scheduled time"))
def two_workers(world: World, user: str, ticker: str) -> None:
    job = world.take_job(user, ticker)
    # Two worker processes: each its own trade book, one shared lock service (Redis in production).
    first = world.execute_snipe(book=TradeBook())
    second = world.execute_snipe(book=TradeBook())
    world.begin_action()
    for outcome in world.run(world.clock.run_together([first(job.key), second(job.key)])):
        world.record_outcome(outcome)


@given(step("snipe leases last {seconds:d} s"))
def lease_ttl(world: World, seconds: int) -> None:
    # A lease this short needs a send's time in flight shorter still: the paper exchange answers at once.
    world.timing = replace(
        world.timing, lease_ttl=timedelta(seconds=seconds), send_in_flight=timedelta(milliseconds=100)
    )


@when(step(
    "a second worker takes {user:Name}'s snipe of {ticker:Name} over at {moment:Time} while the first waits for launch"
))
def second_worker_takes_over(world: World, user: str, ticker: str, moment: str) -> None:
    job = world.take_job(user, ticker)
    takeover_at = world.at(moment)
    assert job.run_at + world.timing.lease_ttl < takeover_at < world.launch_of(ticker)
    first = world.execute_snipe(book=TradeBook())
    second = world.execute_snipe(book=TradeBook())

    async def later() -> object:
        await world.clock.sleep_until(takeover_at)
        return await second(job.key)

    world.begin_action()
    for outcome in world.run(world.clock.run_together([first(job.key), later()])):
        world.record_outcome(outcome)


@when(step(
    "{person:Name} activates the global emergency stop at {moment:Time} "
    "while {user:Name}'s snipe of {ticker:Name} is retrying"
))
def stop_pressed_while_retrying(world: World, person: str, moment: str, user: str, ticker: str) -> None:
    job = world.take_job(user, ticker)
    pressed_at = world.at(moment)
    assert world.launch_of(ticker) < pressed_at

    async def press() -> None:
        await world.clock.sleep_until(pressed_at)
        await world.activate_stop()("global", "pressed while retrying", person)

    world.begin_action()
    outcome, _ = world.run(world.clock.run_together([world.execute_snipe()(job.key), press()]))
    world.record_outcome(outcome)


@then(step("SnipeFailed was recorded less than {limit:d} ms after EmergencyStopActivated"))
def failed_soon_after_stop(world: World, limit: int) -> None:
    failed = _only(world, "SnipeFailed")
    activated = _only(world, "EmergencyStopActivated")
    assert activated.position < failed.position
    assert failed.occurred_at - activated.occurred_at < timedelta(milliseconds=limit)


@then(step("between the two buys the exchange was asked {count:d} times for the order by its client order id"))
def queried_between_buys(world: World, count: int) -> None:
    coid = _only(world, "SnipeScheduled").event.client_order_id
    assert [c.split()[0] for c in world.paper.calls] == ["prepare", "buy", *["query"] * count, "buy"]
    assert {c.split()[-1] for c in world.paper.calls[1:]} == {coid}


@then(step('the second worker skipped it because "{reason}"'))
def second_worker_skipped(world: World, reason: str) -> None:
    (outcomes,) = world.snipe_outcomes.values()
    assert outcomes[1].result is SnipeResult.SKIPPED and outcomes[1].detail == reason


@then(step("no {event:w} was recorded"))
def no_event(world: World, event: str) -> None:
    assert world.events_named(event) == []


@when(step("{user:Name}'s snipe of {ticker:Name} runs at its scheduled time but the worker dies {moment}"))
def worker_dies(world: World, user: str, ticker: str, moment: str) -> None:
    after_accept = {"before the buy reaches the exchange": False, "after the exchange accepted the buy": True}[moment]
    job = world.take_job(user, ticker)
    executor = world.execute_snipe(exchange=DyingExchange(world.paper, after_accept))
    world.begin_action()
    with pytest.raises(WorkerDied):
        world.run(executor(job.key))


@when(step("a restarted worker runs {user:Name}'s snipe of {ticker:Name} at {moment:Time}"))
def restarted_worker(world: World, user: str, ticker: str, moment: str) -> None:
    world.set_time(world.at(moment))
    world.calls_at_restart = len(world.paper.calls)
    # A new process: nothing in its memory survives, only the trade history, the exchange and the
    # lock service (Redis in production), which knows the dead worker held the snipe's lease.
    executor = world.execute_snipe(book=TradeBook())
    world.begin_action()
    world.execute(world.target_id(user, ticker), executor)


# --- Then ---------------------------------------------------------------------------------------


@then(step("SnipeOrderSubmitted was recorded at {moment:Time}, before the first buy was sent"))
def submitted_before_send(world: World, moment: str) -> None:
    submitted = _only(world, "SnipeOrderSubmitted")
    assert submitted.occurred_at == world.at(moment)
    filled = _only(world, "SnipeOrderFilled")
    assert submitted.position < filled.position
    assert submitted.event.client_order_id == filled.event.client_order_id
    assert submitted.event.quote_amount == Decimal("10.01")


@then(step("the buy filled after {attempts:d} attempts at {moment:Time}, {latency:d} ms after launch"))
def filled_after_at(world: World, attempts: int, moment: str, latency: int) -> None:
    filled = _only(world, "SnipeOrderFilled")
    assert filled.event.attempts == attempts
    assert filled.occurred_at == world.at(moment)
    assert filled.event.latency_ms == latency


@then(step("the buy filled after {attempts:d} attempts, at {moment:Time}"))
def filled_after(world: World, attempts: int, moment: str) -> None:
    filled = _only(world, "SnipeOrderFilled")
    assert filled.event.attempts == attempts
    assert filled.occurred_at == world.at(moment)


@then(
    step("the exchange received {count:d} buys for {ticker:Name}, every one with the client order id of SnipeScheduled")
)
def buys_with_coid(world: World, count: int, ticker: str) -> None:
    coid = _only(world, "SnipeScheduled").event.client_order_id
    buys = world.paper_calls("buy", ticker)
    assert len(buys) == count
    assert all(call.split()[-1] == coid for call in buys), set(buys)
    assert {call.split()[2] for call in buys} == {"10.01"}


@then(step("the exchange holds {count:w} buy order for {ticker:Name}"))
def holds_buy_orders(world: World, count: str, ticker: str) -> None:
    orders = world.orders(OrderSide.BUY, ticker)
    assert len(orders) == _COUNT[count], orders
    if orders:
        assert orders[0].client_order_id.value == _only(world, "SnipeScheduled").event.client_order_id


@then(step("{user:Name} holds an open position in {ticker:Name} from that fill"))
def open_position_from_fill(world: World, user: str, ticker: str) -> None:
    fill = _only(world, "SnipeOrderFilled").event
    opened = world.position_events(user, ticker)
    assert [r.event.type_name for r in opened] == ["PositionOpened"]
    event = opened[0].event
    assert event.target_id == world.target_id(user, ticker)
    assert (event.entry_price, event.quantity) == (fill.price, fill.quantity)
    assert event.cost == fill.quote_spent + fill.fee
    assert event.exit_plan.name == "balanced"
    position = world.position(user, ticker)
    assert position.status.value == "open" and position.remaining == fill.quantity
    assert [p.position_id for p in world.book.open_positions(user)] == [world.position_id(user, ticker)]


@then(step(
    "SnipeOrderFilled records price {price:Dec}, quantity {quantity:Dec}, "
    "quote spent {spent:Dec} and fee {fee:Dec} USDT"
))
def fill_amounts(world: World, price: Decimal, quantity: Decimal, spent: Decimal, fee: Decimal) -> None:
    event = _only(world, "SnipeOrderFilled").event
    assert event.price == price
    assert event.quantity == quantity
    assert event.quote_spent == spent
    assert event.fee == fee
    assert event.fee_asset == "USDT"


@then(step("PositionOpened records entry price {price:Dec}, quantity {quantity:Dec} and cost {cost:Dec}"))
def position_amounts(world: World, price: Decimal, quantity: Decimal, cost: Decimal) -> None:
    event = _only(world, "PositionOpened").event
    assert (event.entry_price, event.quantity, event.cost) == (price, quantity, cost)
    assert event.quantity_scale == world.listings["NEW"]["quantity_scale"]


@then(step("SnipeFailed was recorded at {moment:Time}"))
def failed_at(world: World, moment: str) -> None:
    assert _only(world, "SnipeFailed").occurred_at == world.at(moment)


@then(step("the exchange received, in order: {calls}"))
def exchange_received(world: World, calls: str) -> None:
    assert [c.split()[0] for c in world.paper.calls] == _listed(calls)


@then(step("the restarted worker asked the exchange, in order: {calls}"))
def restarted_calls(world: World, calls: str) -> None:
    assert [c.split()[0] for c in world.paper.calls[world.calls_at_restart:]] == _listed(calls)


@then(step("the restarted worker asked the exchange for the order until it sent: {calls}"))
def restarted_queried_then(world: World, calls: str) -> None:
    asked = [c.split()[0] for c in world.paper.calls[world.calls_at_restart:]]
    sent = _listed(calls)
    assert asked[len(asked) - len(sent):] == sent, asked
    assert len(asked) > len(sent) + 1 and set(asked[:len(asked) - len(sent)]) == {"query"}, asked


@then(step('SnipeOrderRejected says code {code}, "{reason}", after {attempts:d} attempt'))
def rejected_says(world: World, code: str, reason: str, attempts: int) -> None:
    event = _only(world, "SnipeOrderRejected").event
    assert (event.code, event.reason, event.attempts) == (code, reason, attempts)


@then(step('the second run was skipped because "{reason}"'))
def second_run_skipped(world: World, reason: str) -> None:
    (outcomes,) = world.snipe_outcomes.values()
    assert [o.result for o in outcomes] == [SnipeResult.FILLED, SnipeResult.SKIPPED]
    assert reason in outcomes[1].detail
    assert world.events_since_mark() == []


@then("one worker filled the snipe and the other skipped it")
def one_filled_one_skipped(world: World) -> None:
    (outcomes,) = world.snipe_outcomes.values()
    assert sorted(o.result.value for o in outcomes) == ["filled", "skipped"]


@then("SnipeOrderFilled and PositionOpened are each recorded once")
def filled_and_opened_once(world: World) -> None:
    assert len(world.events_named("SnipeOrderFilled")) == 1
    assert len(world.events_named("PositionOpened")) == 1


