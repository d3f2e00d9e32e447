"""Faults in the last seconds before a launch, on the production path: `sniper worker` on (the fake)
MEXC, live, with REDIS_URL (each snipe a SAQ job), on Postgres (issue 12, faults 3 and 4).

- A worker killed after it recorded its submission and before it sent, restarted at once: the
  order goes out exactly once, inside the snipe window (README defaults: 15 s lease, 30 s window).
- Postgres, or Redis, down from about 3 s before the launch until 5-6 s after: the snipe fills
  exactly once and the fill is recorded.

Waits are for conditions with generous limits; the only timed steps are the outages themselves,
placed around the launch instant of a target created for that purpose.
"""

from __future__ import annotations

import asyncio
import signal
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from adapters.clock import SystemClock
from adapters.eventstore.migrate import upgrade
from adapters.eventstore.sqlalchemy_store import SqlEventStore, make_engine
from application.use_cases.settings import ChangeTraderSettings
from domain.risk import DEFAULT_RISK_PROFILE
from domain.target import target_stream
from domain.trader import TradingPreferences
from tests.crash.support import (
    SYMBOL,
    USER,
    Child,
    Children,
    assert_one_position,
    child_env,
    create_target,
    eventually,
    stream_of,
    submitted,
    target_events,
)
from tests.crash.test_service_restart import PrivatePostgres, PrivateRedis
from tests.crash.test_service_restart import private_postgres as private_postgres  # noqa: F401 - fixture
from tests.crash.test_service_restart import private_redis as private_redis  # noqa: F401 - fixture
from tests.fakes.mexc_http import FakeMexcServer

WINDOW_SECONDS = 30  # the README's default snipe window


def production_env(
    database_url: str, fake: FakeMexcServer, redis_url: str, prefix: str, **extra: str,
) -> dict[str, str]:
    """A live worker on MEXC with Redis: snipes are SAQ jobs. Lease, window and prepare_ahead are
    the README's defaults unless a test says otherwise."""
    return child_env(database_url, fake, redis_url=redis_url, redis_prefix=prefix, SNIPER_MARKET="mexc",
                     SNIPER_LIVE="1", **extra)


async def live_target(database_url: str, launch: datetime) -> str:
    """A scheduled live target of a trader whose risk profile trades live (targets are checked
    against it when created)."""
    engine = make_engine(database_url)
    try:
        await upgrade(engine)
        await ChangeTraderSettings(SqlEventStore(engine), SystemClock())(
            USER, TradingPreferences(auto_snipe=False, quote_amount=DEFAULT_RISK_PROFILE.max_quote_per_snipe / 10,
                                     risk=replace(DEFAULT_RISK_PROFILE, live=True)))
    finally:
        await engine.dispose()
    return await create_target(database_url, launch, snipe_window_seconds=WINDOW_SECONDS)


async def start_worker(children: Children, name: str, env: dict[str, str]) -> Child:
    worker = await children.start(name, env, "-m", "entrypoints.cli", "worker")
    # Read its log as it comes: an outage makes the agents log tracebacks, and a full pipe would
    # stall the worker on its next log line.
    _draining[worker] = asyncio.create_task(_drain(worker))
    return worker


_draining: dict[Child, asyncio.Task[None]] = {}


async def _drain(worker: Child) -> None:
    assert worker.proc.stderr is not None
    while line := await worker.proc.stderr.readline():
        worker.stderr += line.decode()


async def finish(worker: Child, timeout: float = 90) -> int:
    """Wait for the exit (the log read to its end first)."""
    await asyncio.wait_for(asyncio.shield(worker.proc.wait()), timeout)
    await _draining.pop(worker)
    return await worker.finish(10)


# The bracket around the open (SendPlanner.plan) starts at most this long before the launch: its
# first sends may arrive before the open and be refused as not open (10007), as planned.
BRACKET_LEAD = timedelta(milliseconds=50)


def only_one_taken(fake: FakeMexcServer) -> bool:
    """One order taken, and every other send refused as not open yet (the bracket's early ones)."""
    outcomes = [a.outcome for a in fake.order_arrivals]
    return len(fake.accepted_orders()) == 1 and outcomes.count("accepted") == 1 and \
        all(o in ("accepted", "10007") for o in outcomes)


def arrivals_noted(fake: FakeMexcServer) -> list[datetime]:
    """The wall time of each order's arrival at the exchange."""
    times: list[datetime] = []
    fake.on_order_arrival = lambda arrival: times.append(datetime.now(UTC))
    return times


async def sleep_until(moment: datetime) -> None:
    await asyncio.sleep(max((moment - datetime.now(UTC)).total_seconds(), 0))


async def filled(database_url: str, target_id: str) -> bool:
    try:
        return "SnipeOrderFilled" in await target_events(database_url, target_id)
    except OSError:  # the database is down for a moment
        return False


async def fill_event(database_url: str, target_id: str):  # noqa: ANN201
    [fill] = [r.event for r in await stream_of(database_url, target_stream(target_id))
              if type(r.event).__name__ == "SnipeOrderFilled"]
    return fill


async def stop_worker(worker: Child) -> None:
    """Once it reports that it runs (signals are handled from then on), SIGTERM: a clean stop."""
    await worker.expect("snipes are durable jobs on SAQ", timeout=60)
    await asyncio.sleep(1)
    worker.proc.send_signal(signal.SIGTERM)
    assert await finish(worker) == 0, worker.output[-3000:] + worker.stderr[-6000:]


@pytest.mark.postgres
@pytest.mark.redis
async def test_a_worker_killed_between_submitting_and_sending_is_resumed_and_sends_once_in_the_window(
    fake: FakeMexcServer, fresh_postgres_database: str, redis_url: str, redis_prefix: str, children: Children,
) -> None:
    db = fresh_postgres_database
    env = production_env(db, fake, redis_url, redis_prefix)
    # Far enough ahead for a worker to start and the SAQ job to come due (launch - 4 s) on a loaded machine.
    launch = datetime.now(UTC) + timedelta(seconds=25)
    target_id = await live_target(db, launch)
    fake.open_in(SYMBOL, (launch - datetime.now(UTC)).total_seconds())  # "not yet open" before it
    arrived = arrivals_noted(fake)

    first = await start_worker(children, "first", env)
    await eventually(lambda: submitted(db, target_id), "the worker to record its submission", timeout=60)
    first.kill()  # SIGKILL: its lease stays in Redis until it lapses, its SAQ job stays "active"
    assert await finish(first) == -signal.SIGKILL
    assert arrived == [], "the worker sent before it was killed: the machine is too slow for this test"
    assert datetime.now(UTC) < launch

    second = await start_worker(children, "restarted", env)
    deadline = launch + timedelta(seconds=WINDOW_SECONDS)
    try:
        await eventually(lambda: filled(db, target_id), "the restarted worker to fill the snipe",
                         timeout=(deadline - datetime.now(UTC)).total_seconds() + 30)
    except AssertionError:
        second.kill()
        await finish(second)
        raise AssertionError(second.output[-3000:] + second.stderr[-6000:]) from None
    await stop_worker(second)

    assert only_one_taken(fake), arrived
    assert launch - BRACKET_LEAD <= arrived[0] < deadline, f"sent at {arrived[0]}, window {launch} to {deadline}"
    await assert_one_position(db, target_id)


# --- a store or Redis outage across the launch ---------------------------------------------

# The executor starts 5 s ahead (the SAQ job comes due 2 s before that), so the submission is
# recorded before the outage begins; the outage then spans the last halt check, the send and the fill.
OUTAGE_ENV = {"SNIPER_PREPARE_AHEAD_SECONDS": "5"}
DOWN_BEFORE = timedelta(seconds=3)
DOWN_FOR = timedelta(seconds=6)


async def snipe_across_an_outage(
    children: Children, fake: FakeMexcServer, database_url: str, env: dict[str, str],
    service: PrivatePostgres | PrivateRedis,
) -> tuple[str, list[datetime], datetime]:
    launch = datetime.now(UTC) + timedelta(seconds=25)
    target_id = await live_target(database_url, launch)
    fake.open_in(SYMBOL, (launch - datetime.now(UTC)).total_seconds())
    arrived = arrivals_noted(fake)
    worker = await start_worker(children, "worker", env)
    await eventually(lambda: submitted(database_url, target_id), "the worker to record its submission", timeout=60)
    assert datetime.now(UTC) < launch - DOWN_BEFORE, "the machine is too slow for this test"

    await sleep_until(launch - DOWN_BEFORE)
    await asyncio.to_thread(service.crash)
    await sleep_until(launch - DOWN_BEFORE + DOWN_FOR)
    await asyncio.to_thread(service.start)
    try:
        await eventually(lambda: filled(database_url, target_id), "the fill to be recorded", timeout=60)
    except AssertionError:
        worker.kill()
        await finish(worker)
        raise AssertionError(worker.output[-3000:] + worker.stderr[-6000:]) from None
    await stop_worker(worker)
    return target_id, arrived, launch


@pytest.mark.redis
async def test_postgres_down_across_the_launch_the_snipe_fills_once_and_is_recorded(
    fake: FakeMexcServer, redis_url: str, redis_prefix: str, children: Children,
    private_postgres: PrivatePostgres,  # noqa: F811 - the fixture
) -> None:
    db = private_postgres.url
    env = production_env(db, fake, redis_url, redis_prefix, **OUTAGE_ENV)

    target_id, arrived, launch = await snipe_across_an_outage(children, fake, db, env, private_postgres)

    assert only_one_taken(fake), arrived
    # Sent at the launch, while the database was down: the stop came from the read 4 s before.
    assert launch - BRACKET_LEAD <= arrived[0] < launch - DOWN_BEFORE + DOWN_FOR
    await assert_one_position(db, target_id)
    fill = await fill_event(db, target_id)
    assert fill.halt_read_age_ms is not None and 0 < fill.halt_read_age_ms <= 5000, fill


@pytest.mark.postgres
async def test_redis_down_across_the_launch_the_snipe_fills_once_and_is_recorded(
    fake: FakeMexcServer, fresh_postgres_database: str, children: Children,
    private_redis: PrivateRedis,  # noqa: F811 - the fixture
) -> None:
    db = fresh_postgres_database
    env = production_env(db, fake, private_redis.url, "h11launch", **OUTAGE_ENV)

    target_id, arrived, launch = await snipe_across_an_outage(children, fake, db, env, private_redis)

    assert only_one_taken(fake), arrived
    # Sent at the launch, while Redis was down: the lease, renewed before, still held by our clock.
    assert launch - BRACKET_LEAD <= arrived[0] < launch - DOWN_BEFORE + DOWN_FOR
    await assert_one_position(db, target_id)
    assert (await fill_event(db, target_id)).halt_read_age_ms is None  # the store answered
