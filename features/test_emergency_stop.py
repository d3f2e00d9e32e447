"""Steps of emergency_stop.feature: ActivateEmergencyStop / ClearEmergencyStop, and how
ExecuteSnipe and ManagePositions obey an active stop."""

from __future__ import annotations

from decimal import Decimal

from pytest_bdd import given, scenarios, then, when

from adapters.eventstore.codec import decode_event
from application import repository
from application.ports import OrderReport, OrderSide, OrderStatus
from application.use_cases.monitor import MONITOR
from application.use_cases.safety import EmergencyStopResult
from domain.events import EmergencyStopActivated, ExitFilled, Recorded
from domain.safety import Halt, SafetySwitch, safety_stream
from domain.values import ClientOrderId, Symbol
from features.conftest import activate_stop as _activate
from features.conftest import book_position, step
from features.conftest import clear_stop as _clear
from features.world import ExchangeWithRestingOrders, World

scenarios("emergency_stop.feature")


@given("no emergency stop was ever activated")
def no_stop_ever(world: World) -> None:
    assert world.events_named("EmergencyStopActivated") == []


@given(step("the exchange holds the open orders {ids} on {ticker:Name}"))
def resting_orders(world: World, ids: str, ticker: str) -> None:
    symbol = Symbol.parse(world.symbol_code(ticker))
    orders = [
        OrderReport(symbol, ClientOrderId(i.strip()), f"x-{i.strip()}", OrderSide.SELL, OrderStatus.NEW,
                    Decimal(0), Decimal(0), Decimal("1.5"))
        for i in ids.split(",")
    ]
    world.resting = ExchangeWithRestingOrders(world.paper, orders)


@then(step("the open orders {ids} were cancelled"))
def orders_cancelled(world: World, ids: str) -> None:
    expected = [i.strip() for i in ids.split(",")]
    assert world.result.cancelled_orders == expected
    assert [c.split()[2] for c in world.paper_calls("cancel")] == expected
    # The halt is on record before the first cancel goes out.
    assert world.book.halted("anyone") is not None


@then("the exchange holds no open order")
def no_open_order(world: World) -> None:
    assert world.run(world.resting.open_orders()) == []


@when(step('{person:Name} activates the emergency stop for {scope:Name} because "{reason}"'))
def activates(world: World, person: str, scope: str, reason: str) -> None:
    world.begin_action()
    _activate(world, scope, reason, person)


@when(step("{person:Name} clears the emergency stop for {scope:Name}"))
def clears(world: World, person: str, scope: str) -> None:
    world.begin_action()
    _clear(world, scope, person)


@when(step("{person:Name} clears the emergency stop for {scope:Name} again"))
def clears_again(world: World, person: str, scope: str) -> None:
    world.begin_action()
    world.result = world.run(world.clear_stop()(scope, person))


@when(step('{person:Name} presses the emergency stop for {scope:Name} again because "{reason}"'))
def presses_again(world: World, person: str, scope: str, reason: str) -> None:
    world.begin_action()
    _activate(world, scope, reason, person)


@when(step(
    "{user:Name}'s snipe of {ticker:Name} runs at its scheduled time "
    "while {person:Name} activates the global emergency stop at {moment:Time}"
))
def snipe_runs_while_stop_pressed(world: World, user: str, ticker: str, person: str, moment: str) -> None:
    job = world.take_job(user, ticker)
    pressed_at = world.at(moment)
    assert job.run_at < pressed_at < world.launch_of(ticker)

    async def press() -> None:
        await world.clock.sleep_until(pressed_at)
        await world.activate_stop()("global", "pressed before launch", person)

    world.begin_action()
    outcome, _ = world.run(world.clock.run_together([world.execute_snipe()(job.key), press()]))
    world.record_outcome(outcome)


@when(step('the safety monitor trips the emergency stop for {scope:Name} because "{reason}"'))
def monitor_trips(world: World, scope: str, reason: str) -> None:
    """What MonitorSafety does when a rule trips: an automatic stop, by the safety monitor."""
    world.begin_action()
    world.result = world.run(world.activate_stop()(scope, reason, MONITOR, automatic=True))


@given(step('the safety monitor tripped the emergency stop for {scope:Name} before stops recorded "automatic"'))
def monitor_tripped_long_ago(world: World, scope: str) -> None:
    """As such a stop reads back today: no `automatic` in its payload, so automatic=False."""
    payload = b'{"scope":"%s","reason":"daily loss limit reached","activated_by":"%s"}' % (
        scope.encode(), MONITOR.encode()
    )
    event = decode_event("EmergencyStopActivated", payload)
    assert isinstance(event, EmergencyStopActivated) and event.automatic is False
    world.run(world.store.append([Recorded(f"safety-{scope}", 1, world.clock.now(), scope, "old", event)]))


@then(step("the emergency stop for {scope:Name} is still active, tripped automatically by the safety monitor"))
def stop_is_automatic(world: World, scope: str) -> None:
    activated = world.events_named("EmergencyStopActivated")[-1].event
    assert (activated.scope, activated.activated_by, activated.automatic) == (scope, MONITOR, True)
    world.run(world.book.catch_up(world.store))
    assert world.book.halted(scope) is not None


@then(step('EmergencyStopActivated was recorded for {scope:Name} by {person:Name} because "{reason}"'))
def stop_activated_recorded(world: World, scope: str, person: str, reason: str) -> None:
    (activated,) = world.events_named("EmergencyStopActivated")
    assert (activated.event.scope, activated.event.activated_by, activated.event.reason) == (scope, person, reason)
    assert activated.stream_id == f"safety-{scope}"
    assert world.book.halted(scope if scope != "global" else "anyone") is not None
    assert world.result.scope == scope and world.result.cancel_failures == []


@then(step("EmergencyStopCleared was recorded for {scope:Name} by {person:Name}"))
def stop_cleared_recorded(world: World, scope: str, person: str) -> None:
    (cleared,) = world.events_named("EmergencyStopCleared")
    (activated,) = world.events_named("EmergencyStopActivated")
    assert (cleared.event.scope, cleared.event.cleared_by) == (scope, person)
    assert cleared.stream_id == activated.stream_id and cleared.version == activated.version + 1
    world.run(world.book.catch_up(world.store))
    assert world.book.halted("alice") is None


@then(step("SnipeFailed was recorded at {failed_at:Time}, after EmergencyStopActivated at {activated_at:Time}"))
def failed_after_stop(world: World, failed_at: str, activated_at: str) -> None:
    (failed,) = world.events_named("SnipeFailed")
    (activated,) = world.events_named("EmergencyStopActivated")
    assert activated.occurred_at == world.at(activated_at)
    assert failed.occurred_at == world.at(failed_at)
    assert activated.position < failed.position


@then(step("{user:Name}'s position in {ticker:Name} was closed by {exit:w} at {price:Dec}"))
def closed_by(world: World, user: str, ticker: str, exit: str, price: Decimal) -> None:
    events = world.position_events(user, ticker)
    fills = [r.event for r in events if isinstance(r.event, ExitFilled)]
    assert [type(f).__name__ for f in fills] == [exit]
    assert fills[0].price == price and fills[0].quantity == world.position(user, ticker).quantity
    assert events[-1].event.type_name == "PositionClosed"
    assert book_position(world, user, ticker).status == "closed"


@then(step("the answer is that no emergency stop for {scope:Name} was active"))
def none_was_active(world: World, scope: str) -> None:
    assert world.result is False
    world.run(world.book.catch_up(world.store))
    assert scope not in world.book.stops


@then(step(
    'the answer is that the emergency stop for {scope:Name} has been active since {moment:Time} because "{reason}"'
))
def active_since(world: World, scope: str, moment: str, reason: str) -> None:
    result = world.result
    assert isinstance(result, EmergencyStopResult), result
    assert (result.scope, result.already_active_since, result.reason) == (scope, world.at(moment), reason)


@then(step("the emergency stop for {scope:Name} still holds everything"))
def still_holds_everything(world: World, scope: str) -> None:
    switch = world.run(repository.get(world.store, SafetySwitch, safety_stream(scope)))
    assert (switch.active, switch.halt) == (True, Halt.EVERYTHING)
