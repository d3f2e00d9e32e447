"""Shared polls blocked by a round that ended badly, with real `sniper worker` processes on the
fake MEXC (beside tests/crash/test_lost_jobs.py, which kills a worker mid-round):

- a worker stopped (SIGTERM) whose grace runs out while a calendar round hangs;
- Redis down 5 s in the middle of a reconciliation round, the round ending while it is down.

Either way SAQ leaves the round's periodic job `active` with a heartbeat that stopped. A live
worker must end it and run the poll again within seconds, not at the job's 330 s timeout, and a
listing announced afterwards is sniped exactly once. Postgres and Redis are real; the Redis that
is stopped is a private redis-server of the test's own, persisting each write (an outage, not a
loss of data). Waits are bounded and generous; no timing is asserted.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.scheduling import job_queue
from tests.crash.support import Children, eventually
from tests.crash.test_launch_faults import finish as draining_finish
from tests.crash.test_launch_faults import start_worker as draining_worker
from tests.crash.test_lost_jobs import (
    POLL_RESUMED_WITHIN,
    START_TIMEOUT,
    _true,
    announce_now,
    assert_sniped_once,
    count,
    seed_live_trader,
    start_worker,
    stop,
    wait_for_the_fill,
    worker_env,
)
from tests.crash.test_service_restart import PrivateRedis, free_port, redis_running, server_env
from tests.fakes.mexc_http import ACCOUNT, CALENDAR, FakeMexcServer, Fault, FaultKind

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@dataclass
class PersistentRedis(PrivateRedis):
    """A private redis-server that keeps its data across a crash (append-only file, each write
    synced): stopping and starting it is an outage, not a loss of data."""

    data: Path = Path()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data), "--save", "",
             "--appendonly", "yes", "--appendfsync", "always"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=server_env(),
        )
        # Up once it answers PING: while it replays its append-only file it answers LOADING.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise AssertionError("private redis-server did not start")


@pytest.fixture
def persistent_redis() -> Iterator[PersistentRedis]:
    data = Path(tempfile.mkdtemp(prefix="sniper-redis-"))
    try:
        with redis_running(PersistentRedis(free_port(), data=data)) as server:
            yield server
    finally:
        shutil.rmtree(data, ignore_errors=True)


async def test_a_worker_stopped_past_its_grace_mid_calendar_round_does_not_block_the_calendar_poll(
    fake: FakeMexcServer, fresh_postgres_database: str, redis_url: str, queue_prefix: str, children: Children,
) -> None:
    """A plain SIGTERM while a shared round hangs (on a calendar request that never answers): the
    stopping worker cuts the round off (at the latest when its grace, 1 s here, runs out) and
    exits. SAQ leaves the round's job active; the other worker, running all along, ends that
    run once its heartbeat has been silent 10 s, runs the poll again at once and snipes."""
    db = fresh_postgres_database
    await seed_live_trader(db)
    env = worker_env(db, fake, redis_url, queue_prefix)
    fake.inject(Fault(FaultKind.DELAY, endpoint=CALENDAR, delay=300))
    first = await start_worker(children, {**env, "SNIPER_STOP_GRACE_SECONDS": "1"}, "h10-stopped")
    await eventually(lambda: _true(fake.hits[CALENDAR] >= 1), "the first worker's calendar round", timeout=30)
    second = await start_worker(children, env, "h10-staying")
    polled = fake.hits[CALENDAR]
    assert polled == 1, "the hung round let another calendar poll through"  # one round at a time

    first.proc.send_signal(signal.SIGTERM)
    assert await first.finish(60) == 0, first.output[-3000:] + first.stderr[-6000:]
    # The stopped worker's round no longer holds the poll: the other worker polls the calendar.
    await eventually(lambda: _true(fake.hits[CALENDAR] > polled), "a calendar poll after the stop",
                     timeout=POLL_RESUMED_WITHIN, interval=0.2)

    announce_now(fake)
    await wait_for_the_fill(db, second, "the listing announced after the stop to be sniped")
    await stop(second)
    await assert_sniped_once(fake, db)


async def test_a_redis_outage_during_a_reconciliation_round_does_not_block_the_reconciliation_poll(
    fake: FakeMexcServer, fresh_postgres_database: str, persistent_redis: PersistentRedis, children: Children,
) -> None:
    """Redis goes down for 5 s while a reconciliation round waits for the exchange (its balances
    call), and the round ends meanwhile: SAQ cannot record its end, so its job stays active with
    a heartbeat that stopped. Once Redis is back (with its data), a live runner ends that run and
    runs it again: the reconciliation poll goes on within seconds, and the worker still snipes."""
    db = fresh_postgres_database
    await seed_live_trader(db)
    env = {**worker_env(db, fake, persistent_redis.url, "h10-outage"), "SNIPER_RECONCILE_POLL_SECONDS": "2"}
    # Its log is read as it comes: the outage fills it with tracebacks, and a full pipe would stall it.
    worker = await draining_worker(children, "h10-outage", {**env, "SNIPER_WORKER_ID": "h10-outage"})
    await worker.expect("snipes are durable jobs on SAQ", timeout=START_TIMEOUT)
    # The next account read (a reconciliation round's balances: nothing else reads it while no
    # position is open) is held 3 s: the round is in flight when Redis goes, and ends without it.
    fake.inject(Fault(FaultKind.DELAY, endpoint=ACCOUNT, delay=3))
    await eventually(lambda: _true(not fake.faults), "a reconciliation round to read the account", timeout=30,
                     interval=0.05)
    persistent_redis.crash()
    await asyncio.sleep(5)  # the outage; the fake keeps answering meanwhile
    persistent_redis.start()
    read = fake.hits[ACCOUNT]
    async with job_queue(persistent_redis.url, "h10-outage") as queue:
        left = await queue.job("cron:reconciliation")
    assert left is not None, "Redis kept no record of the round: the outage was a loss of data"

    try:
        await eventually(lambda: _true(fake.hits[ACCOUNT] > read), "a reconciliation round after the outage",
                         timeout=POLL_RESUMED_WITHIN, interval=0.2)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{worker.output[-3000:]}\n{worker.stderr[-6000:]}") from None
    announce_now(fake)
    await wait_for_the_fill(db, worker, "the listing announced after the outage to be sniped")
    worker.proc.send_signal(signal.SIGTERM)
    assert await draining_finish(worker, 60) == 0, worker.output[-3000:] + worker.stderr[-6000:]
    await assert_sniped_once(fake, db)
    assert await count(db, "SnipeFailed") == 0
