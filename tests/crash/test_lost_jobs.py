"""The SAQ job queue losing track of work, with real `sniper worker` processes on the fake MEXC:

- a worker killed (SIGKILL) in the middle of a shared poll's round: its periodic job stays
  `active` under the dead worker. Another worker must take the poll up again within seconds,
  not at the job's timeout (5.5 minutes), or a listing announced meanwhile is never sniped.
  (The same for a stop past the grace and a Redis outage: tests/crash/test_blocked_polls.py.)
- Redis losing its data (no persistence, a failover, FLUSHALL) between a snipe's scheduling
  and its launch: the store still says `scheduled`, the queue holds nothing. The worker
  schedules the snipe again from the store, and it fills exactly once.

Postgres and Redis are real; the Redis that is flushed is a private redis-server of the test's
own (never the shared one). Waits are bounded and generous; no timing is asserted.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from dataclasses import replace

import pytest

from adapters.clock import SystemClock
from adapters.eventstore.migrate import upgrade
from adapters.eventstore.sqlalchemy_store import SqlEventStore, make_engine
from adapters.scheduling import SaqScheduler, job_queue
from application.use_cases.listings import EXECUTE_SNIPE
from application.use_cases.settings import ChangeTraderSettings
from domain.listing import target_id_for
from domain.risk import DEFAULT_RISK_PROFILE
from domain.target import snipe_client_order_id
from domain.trader import TradingPreferences
from tests.crash.support import SYMBOL, USER, Child, Children, all_events, child_env, eventually, names
from tests.crash.test_service_restart import PrivateRedis, free_port, redis_running
from tests.fakes.mexc_http import CALENDAR, FakeListing, FakeMexcServer, Fault, FaultKind

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

COIN = "lost-1"
# From the announcement to the launch: a calendar slot and a state slot (1 s each) see the
# listing ready, and the snipe is scheduled well before it launches, on a loaded machine too.
LEAD_SECONDS = 20
# How long a poll may stay blocked by a dead worker's round: a few slots and the round's
# heartbeat; today's block was the round's timeout, 330 s.
POLL_RESUMED_WITHIN = 60.0
START_TIMEOUT = 90.0


@pytest.fixture
def flushable_redis() -> Iterator[PrivateRedis]:
    """A redis-server of this test's own: it is flushed, so never the shared one."""
    with redis_running(PrivateRedis(free_port())) as server:
        yield server


async def seed_live_trader(database_url: str) -> None:
    """One trader, auto-sniping live with the default risk profile."""
    engine = make_engine(database_url)
    try:
        await upgrade(engine)
        profile = replace(DEFAULT_RISK_PROFILE, live=True)
        await ChangeTraderSettings(SqlEventStore(engine), SystemClock())(
            USER, TradingPreferences(auto_snipe=True, quote_amount=profile.max_quote_per_snipe / 10, risk=profile))
    finally:
        await engine.dispose()


def worker_env(database_url: str, fake: FakeMexcServer, redis_url: str, prefix: str) -> dict[str, str]:
    return child_env(database_url, fake, redis_url=redis_url, redis_prefix=prefix, SNIPER_MARKET="mexc",
                     SNIPER_LIVE="1", SNIPER_CALENDAR_POLL_SECONDS="1", SNIPER_STATE_POLL_SECONDS="1",
                     SNIPER_PREPARE_AHEAD_SECONDS="2")


async def start_worker(children: Children, env: dict[str, str], worker_id: str) -> Child:
    worker = await children.start(worker_id, {**env, "SNIPER_WORKER_ID": worker_id}, "-m", "entrypoints.cli", "worker")
    await worker.expect("snipes are durable jobs on SAQ", timeout=START_TIMEOUT)
    return worker


async def count(database_url: str, event: str) -> int:
    return names(await all_events(database_url)).count(event)


async def stop(worker: Child) -> None:
    worker.proc.send_signal(signal.SIGTERM)
    code = await worker.finish(60)
    assert code == 0, worker.output[-3000:] + worker.stderr[-6000:]


def announce_now(fake: FakeMexcServer) -> None:
    """The listing announced now, ready, launching LEAD_SECONDS later."""
    launch_ms = fake.open_in(SYMBOL, LEAD_SECONDS)
    fake.announce(FakeListing(COIN, "NEW", launch_ms, "New Coin", sts=2, st=2, tt=4))


async def wait_for_the_fill(database_url: str, worker: Child, what: str) -> None:
    """Until the snipe is recorded filled; if it is not in time, the worker's output is in the error."""
    try:
        await eventually(lambda: count(database_url, "SnipeOrderFilled"), what, timeout=LEAD_SECONDS + 40,
                         interval=0.2)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{worker.output[-3000:]}") from None


async def assert_sniped_once(fake: FakeMexcServer, database_url: str) -> None:
    """One live order, recorded as one fill that opened one position."""
    coid = snipe_client_order_id(target_id_for(USER, COIN)).value
    assert [o.client_order_id for o in fake.accepted_orders(SYMBOL)] == [coid]
    # One send accepted; any other was refused as sent before the open (10007: the send plan's
    # early tries around the launch), never a second order refused as a duplicate.
    outcomes = [a.outcome for a in fake.order_arrivals]
    assert outcomes.count("accepted") == 1 and set(outcomes) <= {"accepted", "10007"}, fake.order_arrivals
    assert await count(database_url, "SnipeOrderFilled") == 1 and await count(database_url, "PositionOpened") == 1


async def test_a_worker_killed_mid_calendar_round_does_not_block_the_calendar_poll(
    fake: FakeMexcServer, fresh_postgres_database: str, redis_url: str, queue_prefix: str, children: Children,
) -> None:
    db = fresh_postgres_database
    await seed_live_trader(db)
    env = worker_env(db, fake, redis_url, queue_prefix)
    # The first calendar request hangs: the round that sent it is in flight when its worker dies.
    fake.inject(Fault(FaultKind.DELAY, endpoint=CALENDAR, delay=300))
    first = await start_worker(children, env, "h10-first")
    await eventually(lambda: _true(fake.hits[CALENDAR] >= 1), "the first worker's calendar round", timeout=30)
    first.kill()
    assert await first.finish() == -signal.SIGKILL
    async with job_queue(redis_url, queue_prefix) as queue:
        left = await queue.job("cron:calendar")
    assert left is not None and left.status.value == "active" and left.worker_id == "h10-first", left

    polled = fake.hits[CALENDAR]
    second = await start_worker(children, env, "h10-second")
    # The dead worker's round no longer holds the poll: the second worker polls the calendar.
    await eventually(lambda: _true(fake.hits[CALENDAR] > polled), "a calendar poll after the kill",
                     timeout=POLL_RESUMED_WITHIN, interval=0.2)

    announce_now(fake)
    await wait_for_the_fill(db, second, "the listing announced after the kill to be sniped")
    await stop(second)

    await assert_sniped_once(fake, db)


async def test_a_snipe_lost_by_redis_between_scheduling_and_launch_is_scheduled_again_and_fills_once(
    fake: FakeMexcServer, fresh_postgres_database: str, flushable_redis: PrivateRedis, children: Children,
) -> None:
    db = fresh_postgres_database
    await seed_live_trader(db)
    env = worker_env(db, fake, flushable_redis.url, "h10-flush")
    worker = await start_worker(children, env, "h10-worker")
    announce_now(fake)
    await eventually(lambda: count(db, "SnipeScheduled"), "the snipe to be scheduled", timeout=LEAD_SECONDS,
                     interval=0.1)
    target_id = target_id_for(USER, COIN)
    async with job_queue(flushable_redis.url, "h10-flush") as queue:
        scheduler = SaqScheduler(queue)
        before = await scheduler.state(EXECUTE_SNIPE, target_id)
        assert before is not None and before.status == "queued", before
        await queue.redis.flushall()  # no persistence, a failover or an operator: the queue is empty
        assert await scheduler.state(EXECUTE_SNIPE, target_id) is None

    await wait_for_the_fill(db, worker, "the snipe to fill after the flush")
    await stop(worker)

    await assert_sniped_once(fake, db)
    assert await count(db, "SnipeFailed") == 0


async def _true(value: bool) -> bool:
    return value
