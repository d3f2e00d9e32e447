"""Postgres or Redis dropping a worker's connections mid-run (what a restart of either does to
its clients): the worker carries on over fresh connections, or fails cleanly; no event is lost
or written twice, and no lease gets two holders.

Restarting the shared test Postgres or Redis would disturb every other test using them, so the
restart is simulated where the clients feel it: pg_terminate_backend on the worker's database
connections, CLIENT KILL on its Redis connections.
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
from adapters.mexc.fake.http import FakeMexcServer
from adapters.redis import RedisLockService
from application import repository
from domain.events import Cause
from domain.exit_plans import PRESETS
from domain.target import SnipeTarget, target_stream
from domain.values import Symbol
from tests.crash.support import (
    FILLED_HISTORY,
    Children,
    asyncpg_dsn,
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
    holder = await asyncpg.connect(asyncpg_dsn(db))
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
async def test_redis_connections_killed_while_a_lease_is_held_never_give_it_two_holders(
    redis_url: str, redis_prefix: str,
) -> None:
    """Two workers' lock services on their own clients; every connection of both is killed
    while the first holds the lease (what a Redis restart that keeps its data does).

    The client made by `redis_client` does not retry: the first command over a killed
    connection fails with ConnectionError, the next one reconnects. Each such failure is on the
    safe side: a take that fails holds nothing, a release that fails leaves the lease to lapse
    at its ttl. At no point can the second take the lease while the first holds it."""
    first_client = Redis.from_url(redis_url, decode_responses=False, client_name=f"{redis_prefix}-first")
    second_client = Redis.from_url(redis_url, decode_responses=False, client_name=f"{redis_prefix}-second")
    admin = Redis.from_url(redis_url, decode_responses=True)
    first, second = RedisLockService(first_client, redis_prefix), RedisLockService(second_client, redis_prefix)
    key = f"{redis_prefix}:lock:snipe:t-1"

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
            assert await kill("first", "second") == 2  # one pooled connection each

            with pytest.raises(RedisError):  # the dead connection: fails, and holds nothing
                async with second.lease("snipe:t-1", SHORT_LEASE):
                    pytest.fail("a lease over a dead connection")
            async with second.lease("snipe:t-1", SHORT_LEASE) as other:  # reconnected
                assert other is None, "the lease lives in Redis, not in the connection: still held"
            with pytest.raises(RedisError):
                await first.renew(held, SHORT_LEASE)
            assert await first.renew(held, SHORT_LEASE)  # reconnected, still the holder

            assert await kill("first") == 1
        # The release ran over the killed connection and failed (logged, not raised): the lease
        # stays until its ttl, and until then nobody else gets it.
        assert await admin.exists(key)
        async with second.lease("snipe:t-1", SHORT_LEASE) as other:
            assert other is None
        await eventually(lambda: _gone(admin, key), "the unreleased lease to lapse", timeout=10)
        async with second.lease("snipe:t-1", SHORT_LEASE) as taken:
            assert taken is not None and taken.token > held.token
    finally:
        for client in (first_client, second_client, admin):
            await client.aclose()


async def _gone(client: Redis, key: str) -> bool:
    return not await client.exists(key)


@pytest.mark.postgres
@pytest.mark.redis
async def test_redis_connection_killed_mid_snipe_the_worker_still_records_one_fill(
    fake: FakeMexcServer, fresh_postgres_database: str, redis_url: str, redis_prefix: str, children: Children,
) -> None:
    """A worker holding the snipe's lease loses its Redis connection while its order is in
    flight. The fill is recorded (the store does not depend on Redis); only the release fails,
    so the lease lapses at its ttl instead, and a worker started meanwhile stands down."""
    db = fresh_postgres_database
    target_id = await create_target(db, datetime.now(UTC))
    env = child_env(db, fake, redis_url=redis_url, redis_prefix=redis_prefix,
                    SNIPER_LEASE_TTL_SECONDS=str(int(SHORT_LEASE.total_seconds())))
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
        assert "could not release lease" in worker.stderr  # so it is left to lapse
        fake.on_order_arrival = None

        early = await children.worker("early", env, target_id)
        code = await early.finish()
        if await admin.exists(lock_key):  # still within the ttl when it looked: it must stand down
            assert code == 3 and "another executor holds this snipe" in early.output, early.output + early.stderr
        await eventually(lambda: _gone(admin, lock_key), "the unreleased lease to lapse", timeout=10)
        late = await children.worker("late", env, target_id)
        assert await late.finish() == 3, late.output + late.stderr
        assert "outcome skipped target is filled" in late.output
    finally:
        await admin.aclose()

    assert len(fake.order_arrivals) == 1
    assert await target_events(db, target_id) == FILLED_HISTORY
    await assert_one_position(db, target_id)
