"""A worker killed with SIGKILL mid-snipe: on restart, `sniper reconcile` settles the snipe to
exactly one order on the exchange and one position in the store.

The worker is a real process executing the target through the real container (Postgres
store, Redis leases, MEXC client against the fake exchange on 127.0.0.1); the kill is
SIGKILL, so nothing of the worker's clean-up runs: its lease stays in Redis until it lapses.
"""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from tests.crash.support import (
    FILLED_HISTORY,
    Children,
    assert_one_position,
    child_env,
    create_target,
    eventually,
    submitted,
    target_events,
)
from tests.fakes.mexc_http import ORDER, FakeMexcServer, Fault, FaultKind

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

# The shortest lease the settings allow with a 1 s recvWindow (a send starts only while the lease
# holds for its time in flight: recvWindow + 1 s).
LEASE_TTL_SECONDS = 4
SHORT_RECV_WINDOW = {"MEXC_RECV_WINDOW_MS": "1000"}


async def lease_ms_left(redis_url: str, prefix: str, target_id: str) -> int:
    client = Redis.from_url(redis_url)
    try:
        return int(await client.pttl(f"{prefix}:lock:snipe:{target_id}"))
    finally:
        await client.aclose()


async def test_killed_after_sending_before_recording_reconciles_to_exactly_one_position(
    fake: FakeMexcServer, fresh_postgres_database: str, redis_url: str, redis_prefix: str, children: Children,
) -> None:
    db = fresh_postgres_database
    target_id = await create_target(db, datetime.now(UTC))
    env = child_env(db, fake, redis_url=redis_url, redis_prefix=redis_prefix,
                    SNIPER_LEASE_TTL_SECONDS=str(LEASE_TTL_SECONDS), **SHORT_RECV_WINDOW)
    # The exchange takes the order in and never answers; the worker dies the moment its order
    # arrives, so it can never learn of, let alone record, the fill.
    fake.inject(Fault(FaultKind.TIMEOUT_AFTER_ACCEPT, endpoint=ORDER, delay=60))
    worker = await children.worker("worker", env, target_id)
    fake.on_order_arrival = lambda arrival: worker.kill()

    assert await worker.finish() == -signal.SIGKILL
    fake.on_order_arrival = None
    [order] = fake.accepted_orders()
    assert order.status == "FILLED"
    assert await target_events(db, target_id) == FILLED_HISTORY[:4]  # submitted, fill never recorded

    # Restarted at once: the dead worker's lease still stands in Redis. A lease cannot tell a dead
    # holder from a slow one, so reconciliation tries it again for one ttl: a dead holder's lapses
    # in that time. Then it finds the order by its client id and records it: no new send.
    assert await lease_ms_left(redis_url, redis_prefix, target_id) > 0
    code, out, err = await children.sniper(env, "reconcile")
    assert code == 0, out + err
    assert f"reconciled snipe {target_id}: filled" in out and "clean: every order is accounted for" in out

    # One order (the send plan's early sends refused as not open yet, 10007, aside).
    assert len([a for a in fake.order_arrivals if a.outcome != "10007"]) == 1
    assert fake.accepted_orders() == [order]
    await assert_one_position(db, target_id)


async def test_killed_after_recording_before_sending_sends_exactly_once_on_restart(
    fake: FakeMexcServer, fresh_postgres_database: str, redis_url: str, redis_prefix: str, children: Children,
) -> None:
    """The other side of the send: the submission is recorded, the order never left. The restart
    asks the exchange, learns there is no order, and sends it (still inside the snipe window)."""
    db = fresh_postgres_database
    env = child_env(db, fake, redis_url=redis_url, redis_prefix=redis_prefix,
                    SNIPER_LEASE_TTL_SECONDS=str(LEASE_TTL_SECONDS), **SHORT_RECV_WINDOW)
    worker = await children.worker("worker", env)
    await worker.expect("ready")
    # Launch 2 s after the go: the worker records its submission at once, then sleeps until
    # the launch, and is killed in that sleep.
    target_id = await create_target(db, datetime.now(UTC) + timedelta(seconds=2), snipe_window_seconds=30)
    await worker.send(target_id)
    await eventually(lambda: submitted(db, target_id), "the worker to record its submission")
    worker.kill()
    assert await worker.finish() == -signal.SIGKILL
    assert fake.order_arrivals == [], "the worker sent before it was killed: the machine is too slow for this test"

    code, out, err = await children.sniper(env, "reconcile")  # waits out the dead worker's lease
    assert code == 0, out + err
    assert f"reconciled snipe {target_id}: filled" in out

    assert [a.outcome for a in fake.order_arrivals if a.outcome != "10007"] == ["accepted"]
    assert len(fake.accepted_orders()) == 1
    await assert_one_position(db, target_id)
