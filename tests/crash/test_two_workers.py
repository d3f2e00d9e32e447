"""Two worker processes started on the same snipe: one order on the exchange, one position.

With REDIS_URL the snipe lease is shared, and the second worker never gets near the exchange.
Without it each process has its own in-process leases, which cannot see each other: then what
stands between the two workers and two buys is the event store's optimistic concurrency (only
one can record the submission of a SCHEDULED target) and, once the target is EXECUTING, the
client order id derived from the target, which the exchange refuses to take twice.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from tests.crash.support import Child, Children, assert_one_position, child_env, create_target, eventually, submitted
from tests.fakes.mexc_http import FakeMexcServer

EXIT_FILLED, EXIT_SKIPPED = 0, 3


async def ready_workers(children: Children, env: dict[str, str], count: int = 2) -> list[Child]:
    workers = [await children.worker(f"worker-{i + 1}", env) for i in range(count)]
    await asyncio.gather(*(w.expect("ready") for w in workers))
    return workers


def outcome(worker: Child) -> str:
    return next(line for line in worker.lines if line.startswith("outcome "))


@pytest.mark.postgres
@pytest.mark.redis
async def test_with_redis_leases_the_second_worker_never_sends(
    fake: FakeMexcServer, fresh_postgres_database: str, redis_url: str, redis_prefix: str, children: Children,
) -> None:
    db = fresh_postgres_database
    env = child_env(db, fake, redis_url=redis_url, redis_prefix=redis_prefix)
    first, second = await ready_workers(children, env)
    target_id = await create_target(db, datetime.now(UTC) + timedelta(seconds=1))
    await asyncio.gather(first.send(target_id), second.send(target_id))  # both go at the same moment

    codes = await asyncio.gather(first.finish(), second.finish())

    assert sorted(codes) == [EXIT_FILLED, EXIT_SKIPPED], [w.output + w.stderr for w in (first, second)]
    loser = second if codes[1] == EXIT_SKIPPED else first
    # It tried the held lease again (for up to a ttl) and got it once the winner was done.
    assert outcome(loser) in ("outcome skipped target is filled", "outcome skipped another executor holds this snipe")
    # One order: the send plan's early sends refused as not open yet (10007) aside.
    assert [a.outcome for a in fake.order_arrivals if a.outcome != "10007"] == ["accepted"]
    assert len(fake.accepted_orders()) == 1
    await assert_one_position(db, target_id)
    client = Redis.from_url(redis_url)
    try:
        assert not await client.exists(f"{redis_prefix}:lock:snipe:{target_id}"), "the winner released its lease"
    finally:
        await client.aclose()


@pytest.mark.postgres
async def test_without_redis_two_workers_released_together_place_one_order(
    fake: FakeMexcServer, fresh_postgres_database: str, children: Children,
) -> None:
    """Both load the target SCHEDULED and race to record its submission: the store takes one
    append, the other worker's conflicts, and it stands down without sending."""
    db = fresh_postgres_database
    env = child_env(db, fake)  # no REDIS_URL: in-process leases, one per process
    first, second = await ready_workers(children, env)
    target_id = await create_target(db, datetime.now(UTC) + timedelta(seconds=1))
    await asyncio.gather(first.send(target_id), second.send(target_id))

    codes = await asyncio.gather(first.finish(), second.finish())

    assert sorted(codes) == [EXIT_FILLED, EXIT_SKIPPED], [w.output + w.stderr for w in (first, second)]
    assert len(fake.accepted_orders()) == 1
    # Which path the loser took depends on timing: a lost submission race sends nothing; a
    # worker that loaded the target after the winner's submission resumes it and may send the
    # same client order id, which the exchange refuses (see the next test).
    assert len(fake.order_arrivals) in (1, 2)
    assert [a.outcome for a in fake.order_arrivals].count("accepted") == 1
    await assert_one_position(db, target_id)


@pytest.mark.postgres
async def test_without_redis_a_second_worker_on_an_executing_snipe_near_its_launch_finds_the_first_order(
    fake: FakeMexcServer, fresh_postgres_database: str, children: Children,
) -> None:
    """Several workers without REDIS_URL: each has its own leases, which cannot see each other.

    The second worker starts after the first recorded its submission, 8 s before the launch. It
    takes the target for one a crashed worker left EXECUTING, and its lock service knows of no
    earlier holder (`Lease.first`): that holder may believe in its lease for up to a ttl (15 s)
    more, so the second worker looks for the order until the visibility grace has passed after
    that, finds the first worker's order, and never sends. (A second worker taken up more than a
    ttl and 5 s before the launch would query once, find nothing and send at the launch too: only
    the exchange's refusal of a reused client order id, undocumented, would stand between them.
    With several worker processes, REDIS_URL is required.)"""
    db = fresh_postgres_database
    env = child_env(db, fake)
    first, second = await ready_workers(children, env)
    target_id = await create_target(db, datetime.now(UTC) + timedelta(seconds=8))
    await first.send(target_id)
    await eventually(lambda: submitted(db, target_id), "the first worker to record its submission")
    assert fake.order_arrivals == [], "the first worker sent before the second started: machine too slow"
    await second.send(target_id)

    codes = await asyncio.gather(first.finish(), second.finish())

    # One POST reached the exchange.
    assert [a.outcome for a in fake.order_arrivals] == ["accepted"], fake.order_arrivals
    assert len(fake.accepted_orders()) == 1
    # Both workers followed the one order to its fill; one recorded it, the other stood down.
    assert sorted(codes) == [EXIT_FILLED, EXIT_SKIPPED], [w.output + w.stderr for w in (first, second)]
    loser = first if codes[0] == EXIT_SKIPPED else second
    assert outcome(loser).startswith("outcome skipped fill already recorded")
    await assert_one_position(db, target_id)
