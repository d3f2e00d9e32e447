"""Postgres or Redis dropping a worker's connections mid-run (what a restart of either does to
its clients): the worker carries on over fresh connections, or fails cleanly; no event is lost
or written twice, and no lease gets two holders.

Restarting the shared test Postgres or Redis would disturb every other test using them, so the
restart is simulated where the clients feel it: pg_terminate_backend on the worker's database
connections, CLIENT KILL on its Redis connections, and a relay in front of Redis for a connection
that breaks while a command is on it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError

from adapters.eventstore.sqlalchemy_store import _PG_APPEND_LOCK
from adapters.redis import RedisLockService, locks, redis_client
from application import repository
from domain.events import Cause
from domain.exit_plans import PRESETS
from domain.target import SnipeTarget, target_stream
from domain.values import Symbol
from tests.adapters.redis_proxy import RedisProxy
from tests.conftest import postgres_dsn
from tests.crash.support import (
    FILLED_HISTORY,
    Children,
    all_events,
    assert_one_position,
    child_env,
    create_target,
    eventually,
    names,
    open_store,
    run_aside,
    target_events,
    terminate_backends,
)
from tests.fakes.mexc_http import FakeMexcServer

SHORT_LEASE = timedelta(seconds=2)


@pytest.mark.postgres
async def test_database_connections_dropped_while_the_order_is_in_flight_the_worker_records_the_fill(
    fake: FakeMexcServer, fresh_postgres_database: str, children: Children,
) -> None:
    """Between recording the submission and recording the fill, every connection the worker
    holds to Postgres is terminated. Its next append must go through on a fresh connection."""
    db = fresh_postgres_database
    target_id = await create_target(db, datetime.now(UTC))
    terminated: list[int] = []
    # While the worker waits for the exchange's reply, its pool holds idle connections only.
    fake.on_order_arrival = lambda arrival: terminated.append(run_aside(lambda: terminate_backends(db)))
    worker = await children.worker("worker", child_env(db, fake), target_id)

    code = await worker.finish()

    assert terminated and terminated[0] >= 1, "the worker held no connection to terminate"
    assert code == 0, worker.output + worker.stderr
    assert "outcome filled" in worker.output
    assert len(fake.accepted_orders()) == 1
    await assert_one_position(db, target_id)
    assert len(await all_events(db)) == len(FILLED_HISTORY) + 1  # the target's five and PositionOpened


@pytest.mark.postgres
async def test_an_append_whose_connection_dies_mid_transaction_fails_cleanly_and_a_retry_writes_once(
    fresh_postgres_database: str,
) -> None:
    """The connection dies inside the append's transaction (while it waits for the append lock):
    the append raises, nothing of it is stored, and the same events appended again are stored
    exactly once, with the versions they were given."""
    db = fresh_postgres_database
    await create_target(db, datetime.now(UTC) + timedelta(minutes=5))  # the schema, and one target
    before = await all_events(db)
    now = datetime.now(UTC)
    target = SnipeTarget.create("t-crash", "local", "c-1", Symbol.parse("NEWUSDT"), now + timedelta(minutes=5),
                                Decimal("10"), PRESETS["balanced"], Decimal(1), True, Cause(now, "t-crash"))
    holder = await asyncpg.connect(postgres_dsn(db))
    async with open_store(db) as store:
        try:
            await holder.execute("SELECT pg_advisory_lock($1)", _PG_APPEND_LOCK)  # every append now waits
            append = asyncio.create_task(repository.save(store, target))
            waiting = "wait_event_type = 'Lock' AND query LIKE '%pg_advisory_xact_lock%'"
            killed = await eventually(lambda: terminate_backends(db, waiting), "the append to wait for its lock")
            assert killed == 1
            with pytest.raises(DBAPIError):
                await append
        finally:
            await holder.close()  # releases the append lock
        assert names(await store.read_all()) == names(before), "a failed append left something behind"
        assert len(target.pending) == 1, "a failed save must keep the events to save"

        stored = await repository.save(store, target)  # the same pool: a fresh connection

        assert [(r.stream_id, r.version) for r in stored] == [(target_stream("t-crash"), 1)]
        assert target.pending == []
        after = await store.read_all()
        assert len(after) == len(before) + 1
        assert [r.version for r in await store.load(target_stream("t-crash"))] == [1]


@pytest.mark.redis
async def test_redis_connections_lost_while_a_lease_is_held_never_give_it_two_holders(
    redis_url: str, redis_prefix: str,
) -> None:
    """Two workers' lock services, each on its own client made by `redis_client`, through a relay
    that can break a connection at any moment (tests/adapters/redis_proxy.py).

    A connection Redis closed while it sat idle (what a restart that keeps its data does) is
    replaced before the next command: the leases carry on. A command on a connection that
    breaks fails and is never sent again (CONNECTION_POLICY in adapters/redis), and each such
    failure is on the safe side: a renew whose reply was lost is asked again, a release that
    never arrived leaves the lease to lapse at its ttl, a take whose reply was lost holds the
    key for nobody until its ttl. At no point can two hold the lease."""
    admin = redis_client(redis_url)
    take, release, renew = [
        (await admin.script_load(script)).encode() for script in (locks._TAKE, locks._RELEASE, locks._RENEW)
    ]  # loaded beforehand: each call is then one EVALSHA <sha>, which the relay looks for
    key = f"{redis_prefix}:lock:snipe:t-1"
    fence = f"{redis_prefix}:fence:snipe:t-1"
    async with RedisProxy(redis_url) as relay:
        first_client = redis_client(relay.url, name=f"{redis_prefix}-first")
        second_client = redis_client(relay.url, name=f"{redis_prefix}-second")
        first, second = RedisLockService(first_client, redis_prefix), RedisLockService(second_client, redis_prefix)

        async def kill(*who: str) -> int:
            killed = 0
            for client in await admin.client_list():
                if client["name"] in {f"{redis_prefix}-{w}" for w in who}:
                    killed += int(await admin.client_kill_filter(_id=client["id"]))
            return killed

        try:
            async with first.lease("snipe:t-1", SHORT_LEASE) as held:
                assert held is not None
                async with second.lease("snipe:t-1", SHORT_LEASE) as other:
                    assert other is None
                assert await kill("first", "second") == 2  # one pooled connection each, idle
                await eventually(lambda: _true(relay.open == 0), "the relay to pass the close on")

                async with second.lease("snipe:t-1", SHORT_LEASE) as other:  # on a fresh connection
                    assert other is None, "the lease lives in Redis, not in the connection: still held"
                assert await first.renew(held, SHORT_LEASE)

                relay.cut_after(renew)
                renews = relay.sent(renew)
                with pytest.raises(RedisError):
                    await first.renew(held, SHORT_LEASE)  # it ran; its reply was lost
                assert relay.sent(renew) == renews + 1, "a renew is never sent twice by the client"
                assert await first.renew(held, SHORT_LEASE), "asked again: still the holder"

                relay.cut_before(release)
            # The release never reached Redis (logged, not raised): the lease stays until its
            # ttl, and until then nobody else gets it.
            assert relay.sent(release) == 0 and await admin.exists(key)
            async with second.lease("snipe:t-1", SHORT_LEASE) as other:
                assert other is None
            await eventually(lambda: _gone(admin, key), "the unreleased lease to lapse", timeout=10)

            relay.cut_after(take)
            takes = relay.sent(take)
            with pytest.raises(RedisError):
                async with second.lease("snipe:t-1", SHORT_LEASE):
                    pytest.fail("a lease whose take was not answered")
            assert relay.sent(take) == takes + 1, "a take is never sent twice by the client"
            assert int(await admin.get(fence)) == held.token + 1, "it ran: the key is held, by nobody who knows"
            async with first.lease("snipe:t-1", SHORT_LEASE) as other:
                assert other is None
            await eventually(lambda: _gone(admin, key), "the unknown lease to lapse", timeout=10)
            async with first.lease("snipe:t-1", SHORT_LEASE) as taken:
                assert taken is not None and taken.token == held.token + 2
        finally:
            for client in (first_client, second_client):
                await client.aclose()
            await admin.aclose()


async def _true(value: bool) -> bool:
    return value


async def _gone(client: Redis, key: str) -> bool:
    return not await client.exists(key)


@pytest.mark.postgres
@pytest.mark.redis
async def test_redis_connection_killed_mid_snipe_the_worker_still_records_one_fill(
    fake: FakeMexcServer, fresh_postgres_database: str, redis_url: str, redis_prefix: str, children: Children,
) -> None:
    """A worker holding the snipe's lease loses its Redis connection (idle: no lease command is
    out while the order is) while its order is in flight. The fill is recorded (the store does
    not depend on Redis), and the release after it goes out on a fresh connection: the lease is
    given back at once rather than left to lapse, and the next worker finds the target filled.
    (A release that fails is left to lapse at its ttl: see the test above.)"""
    db = fresh_postgres_database
    # A window far longer than a worker takes to start on a loaded machine: the test is not about it.
    target_id = await create_target(db, datetime.now(UTC), snipe_window_seconds=120)
    env = child_env(db, fake, redis_url=redis_url, redis_prefix=redis_prefix,
                    SNIPER_LEASE_TTL_SECONDS="4", MEXC_RECV_WINDOW_MS="1000")
    lock_key = f"{redis_prefix}:lock:snipe:{target_id}"
    admin = Redis.from_url(redis_url, decode_responses=True)
    killed: list[int] = []
    worker = await children.worker("worker", env)
    client_id = int((await worker.expect("redis-client ")).split()[1])
    await worker.expect("ready")

    def kill_the_workers_redis_connection(arrival: object) -> None:
        async def kill() -> int:
            killer = Redis.from_url(redis_url, decode_responses=True)
            try:
                assert await killer.exists(lock_key), "the worker holds the lease while it sends"
                return int(await killer.client_kill_filter(_id=client_id))
            finally:
                await killer.aclose()

        killed.append(run_aside(kill))

    fake.on_order_arrival = kill_the_workers_redis_connection
    try:
        await worker.send(target_id)
        assert await worker.finish() == 0, worker.output + worker.stderr
        assert killed == [1], "the worker's Redis connection was killed mid-snipe"
        assert "outcome filled" in worker.output
        assert "could not release lease" not in worker.stderr, worker.stderr
        assert not await admin.exists(lock_key), "released, not left to lapse"
        fake.on_order_arrival = None

        late = await children.worker("late", env, target_id)
        assert await late.finish() == 3, late.output + late.stderr
        assert "outcome skipped target is filled" in late.output
    finally:
        await admin.aclose()

    # Early not-open sends (10007) aside: one order.
    assert [a.outcome for a in fake.order_arrivals if a.outcome != "10007"] == ["accepted"]
    assert await target_events(db, target_id) == FILLED_HISTORY
    await assert_one_position(db, target_id)
