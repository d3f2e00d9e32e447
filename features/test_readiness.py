"""Steps of readiness.feature: DetectReadyStates over the paper exchange's symbol states."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from pytest_bdd import given, scenarios, then

from application.use_cases.listings import EXECUTE_SNIPE
from domain.target import snipe_client_order_id
from features.conftest import step
from features.world import World, names

scenarios("readiness.feature")

_COUNT = {"no": 0, "one": 1, "two": 2}


@given(step("the symbol states were polled at {moment:Time}"))
def states_were_polled(world: World, moment: str) -> None:
    world.set_time(world.at(moment))
    world.poll_states()


@given(step("the calendar was synced again at {moment:Time}"))
def calendar_synced_again_at(world: World, moment: str) -> None:
    world.set_time(world.at(moment))
    world.sync()


@then(step(
    "ListingReadyDetected is recorded once for {ticker:Name} with sts={sts:d} st={st:d} tt={tt:d} "
    "and {lead:d} s of lead"
))
def ready_detected(world: World, ticker: str, sts: int, st: int, tt: int, lead: int) -> None:
    detected = [r for r in world.events_named("ListingReadyDetected") if r.event.coin_id == world.coin_id(ticker)]
    assert len(detected) == 1, detected
    event = detected[0].event
    assert (event.sts, event.st, event.tt) == (sts, st, tt)
    assert event.lead_seconds == lead
    assert event.launch_at == world.launch_of(ticker)
    assert detected[0].stream_id == f"listing-{world.coin_id(ticker)}"
    world.run(world.book.catch_up(world.store))
    assert world.book.listings[world.coin_id(ticker)].ready is True


@then(step('{user:Name}\'s snipe of {ticker:Name} is ready with pattern "{pattern}" and confidence {confidence:Dec}'))
def target_ready_with(world: World, user: str, ticker: str, pattern: str, confidence: Decimal) -> None:
    ready = [r.event for r in world.target_events(user, ticker) if r.event.type_name == "SnipeTargetReady"]
    assert len(ready) == 1, ready
    assert ready[0].pattern == pattern
    assert ready[0].confidence == confidence
    assert world.target(user, ticker).confidence == confidence


@then(step("SnipeTargetReady for {user:Name}'s {ticker:Name} was seen {lead:d} s ahead of launch"))
def target_ready_lead(world: World, user: str, ticker: str, lead: int) -> None:
    (ready,) = [r for r in world.target_events(user, ticker) if r.event.type_name == "SnipeTargetReady"]
    assert ready.event.lead_seconds == lead
    assert ready.occurred_at == world.launch_of(ticker) - timedelta(seconds=lead)


@then(step(
    "SnipeScheduled for {user:Name}'s {ticker:Name} executes at {execute:Time} with the deadline {deadline:Time} "
    "and its own client order id"
))
def snipe_scheduled_event(world: World, user: str, ticker: str, execute: str, deadline: str) -> None:
    scheduled = [r for r in world.target_events(user, ticker) if r.event.type_name == "SnipeScheduled"]
    assert len(scheduled) == 1, scheduled
    event = scheduled[0].event
    assert event.execute_at == world.at(execute)
    assert event.deadline_at == world.at(deadline)
    target_id = world.target_id(user, ticker)
    assert event.target_id == target_id
    # Derived from the target: every worker and every attempt sends the same id.
    assert event.client_order_id == snipe_client_order_id(target_id).value
    assert event.client_order_id != snipe_client_order_id(world.target_id(user + "x", ticker)).value


@then(step("the scheduler holds one execute_snipe job for {user:Name}'s {ticker:Name} at {moment:Time}"))
def scheduler_job(world: World, user: str, ticker: str, moment: str) -> None:
    jobs = [j for j in world.scheduler.pending if j.key == world.target_id(user, ticker)]
    assert len(jobs) == 1, world.scheduler.pending
    assert jobs[0].kind == EXECUTE_SNIPE
    assert jobs[0].run_at == world.at(moment)
    assert world.at(moment) == world.launch_of(ticker) - world.timing.prepare_ahead


@then(step("the scheduler holds {count:w} job"))
def scheduler_holds(world: World, count: str) -> None:
    assert len(world.scheduler.pending) == _COUNT[count], world.scheduler.pending


@then(step("the poll recorded {what}"))
def poll_recorded(world: World, what: str) -> None:
    expected = [] if what == "nothing" else [w.strip() for w in what.split(",")]
    assert names(world.events_since_mark()) == expected


@then(step('the snipe expired because "{reason}"'))
def expired_because(world: World, reason: str) -> None:
    expired = world.events_named("SnipeExpired")
    assert len(expired) == 1, expired
    assert reason in expired[0].event.reason, expired[0].event.reason
    assert world.result.expired == [expired[0].event.target_id]
