"""Durable scheduling on SAQ, on the local Redis in real time.

Workers notice due jobs about once a second, so jobs are due a second or two ahead, waits
are generous and assertions have margins: "not before run_at", "within a few seconds after".
Each test has its own queue, whose keys are deleted afterwards.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from saq import Queue

from adapters.redis import redis_client
from adapters.scheduling import JobPolicy, JobRunner, Periodic, SaqScheduler, job_queue
from adapters.scheduling.saq_runner import Handler
from application.ports import ScheduledJob
from tests.adapters.redis_support import delete_prefixed

# SAQ calls redis-py's setex, deprecated in redis-py 8: its warning, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:Call to deprecated setex:DeprecationWarning")

KIND = "execute_snipe"
S = timedelta(seconds=1)
# Late a job may run: a second for the workers to notice it, the rest slack for a busy machine.
LATE = 3.0


def at(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


async def eventually(check: Callable[[], bool], within: float = 8.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"not so within {within} s"
        await asyncio.sleep(0.05)


async def sleep_until(moment: datetime) -> None:
    await asyncio.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))


@dataclass
class Runs:
    """What the handlers saw: (key, wall-clock start) per run."""

    seen: list[tuple[str, float]] = field(default_factory=list)

    def handler(self, pause: float = 0.0, result: object = None) -> Handler:
        async def run(key: str) -> object:
            self.seen.append((key, time.time()))
            await asyncio.sleep(pause)
            return result

        return run

    def count(self, key: str) -> int:
        return sum(1 for k, _ in self.seen if k == key)

    def started(self, key: str) -> float:
        return next(t for k, t in self.seen if k == key)


@dataclass
class Deployment:
    """Queues, schedulers and runners of one test on one queue name, closed at its end."""

    url: str
    prefix: str
    stack: AsyncExitStack

    async def queue(self) -> Queue:
        return await self.stack.enter_async_context(job_queue(self.url, self.prefix))

    async def scheduler(self, **policies: JobPolicy) -> SaqScheduler:
        return SaqScheduler(await self.queue(), policies)

    async def runner(self, handlers: dict[str, Handler], periodic: tuple[Periodic, ...] = (), **options) -> JobRunner:
        queue = await self.queue()
        options.setdefault("idle_wait", timedelta(milliseconds=200))
        runner = JobRunner(queue, handlers, periodic, **options)
        await runner.start()
        self.stack.push_async_callback(runner.stop)  # stopped before its queue closes
        return runner

    async def state_becomes(self, scheduler: SaqScheduler, key: str, status: str, within: float = 8.0) -> None:
        deadline = time.monotonic() + within
        while (state := await scheduler.state(KIND, key)) is None or state.status != status:
            assert time.monotonic() < deadline, f"{key} is {state}, not {status}, after {within} s"
            await asyncio.sleep(0.05)


@pytest.fixture
async def deployment(redis_url: str) -> AsyncIterator[Deployment]:
    prefix = f"sniper-test-{secrets.token_hex(6)}"
    async with AsyncExitStack() as stack:
        yield Deployment(redis_url, prefix, stack)
    await _flush_queue(redis_url, prefix)


@dataclass(frozen=True)
class Outcome:
    """Stands for a use case's result: not JSON, which the job record must still take."""

    detail: str


@pytest.mark.redis
class TestScheduledJobs:
    async def test_a_job_runs_once_at_about_its_time(self, deployment: Deployment) -> None:
        runs = Runs()
        scheduler = await deployment.scheduler()
        await deployment.runner({KIND: runs.handler(result=Outcome("filled"))})
        run_at = at(1)
        await scheduler.schedule(ScheduledJob(KIND, "t-1", run_at))

        await eventually(lambda: runs.count("t-1") == 1)
        assert run_at.timestamp() - 0.05 <= runs.started("t-1") <= run_at.timestamp() + LATE
        await deployment.state_becomes(scheduler, "t-1", "complete")
        state = await scheduler.state(KIND, "t-1")
        assert state is not None and state.attempts == 1 and "filled" in (state.result or "")
        assert state.due_at is not None and abs((state.due_at - run_at).total_seconds()) < 0.01

    async def test_scheduling_the_same_job_again_keeps_one(self, deployment: Deployment) -> None:
        runs = Runs()
        scheduler, other = await deployment.scheduler(), await deployment.scheduler()
        run_at = at(1)
        job = ScheduledJob(KIND, "t-1", run_at)
        await scheduler.schedule(job)
        await asyncio.gather(*(s.schedule(job) for s in (scheduler, other) for _ in range(5)))
        await deployment.runner({KIND: runs.handler()})

        await eventually(lambda: runs.count("t-1") == 1)
        await asyncio.sleep(1.1)  # another pass of the workers
        assert runs.count("t-1") == 1

    async def test_rescheduling_moves_the_one_job(self, deployment: Deployment) -> None:
        runs = Runs()
        queue = await deployment.queue()
        scheduler = SaqScheduler(queue)
        later, sooner = at(2.5), at(1)
        await scheduler.schedule(ScheduledJob(KIND, "later", at(1)))
        await scheduler.schedule(ScheduledJob(KIND, "later", later))
        await scheduler.schedule(ScheduledJob(KIND, "sooner", at(600)))
        await scheduler.schedule(ScheduledJob(KIND, "sooner", sooner))
        # Due and waiting for a worker (none runs yet): taken back and moved.
        await scheduler.schedule(ScheduledJob(KIND, "due", at(-1)))
        await queue.schedule()  # a worker's pass: due jobs go to the list workers take from
        await scheduler.schedule(ScheduledJob(KIND, "due", later))
        await deployment.runner({KIND: runs.handler()})

        await eventually(lambda: runs.count("sooner") == 1)
        assert runs.started("sooner") >= sooner.timestamp() - 0.05
        assert runs.count("later") == runs.count("due") == 0
        await eventually(lambda: runs.count("later") == 1 and runs.count("due") == 1)
        assert min(runs.started("later"), runs.started("due")) >= later.timestamp() - 0.05
        await asyncio.sleep(1.1)
        assert [runs.count(k) for k in ("sooner", "later", "due")] == [1, 1, 1]

    async def test_a_cancelled_job_never_runs(self, deployment: Deployment) -> None:
        runs = Runs()
        queue = await deployment.queue()
        scheduler = SaqScheduler(queue)
        await scheduler.schedule(ScheduledJob(KIND, "gone", at(0.5)))
        await scheduler.schedule(ScheduledJob(KIND, "due-gone", at(-1)))
        await queue.schedule()  # a worker's pass: due, waiting to be taken
        await scheduler.schedule(ScheduledJob(KIND, "kept", at(1)))
        await scheduler.cancel(KIND, "gone")
        await scheduler.cancel(KIND, "due-gone")
        await scheduler.cancel(KIND, "never-scheduled")
        await deployment.runner({KIND: runs.handler()})

        await eventually(lambda: runs.count("kept") == 1)
        await asyncio.sleep(0.5)  # were they still there, they would have gone with "kept" (due no later)
        assert runs.count("gone") == runs.count("due-gone") == 0
        assert await scheduler.state(KIND, "gone") is None
        # Cancelled is not barred: scheduled again, it runs.
        await scheduler.schedule(ScheduledJob(KIND, "gone", at(0.2)))
        await eventually(lambda: runs.count("gone") == 1)

    async def test_two_workers_run_each_job_once(self, deployment: Deployment) -> None:
        runs = Runs()
        keys = [f"t-{i}" for i in range(20)]
        schedulers = [await deployment.scheduler(), await deployment.scheduler()]
        for name in ("a", "b"):
            await deployment.runner({KIND: runs.handler(pause=0.1)}, concurrency=4, worker_id=f"worker-{name}")
        # Both schedule every job, some due now and some in a second, at the same time.
        await asyncio.gather(*(
            s.schedule(ScheduledJob(KIND, key, at(i % 2))) for s in schedulers for i, key in enumerate(keys)
        ))

        await eventually(lambda: all(runs.count(k) >= 1 for k in keys))
        await asyncio.sleep(1.5)
        assert {k: runs.count(k) for k in keys} == {k: 1 for k in keys}

    async def test_a_job_outlives_a_worker_restart(self, deployment: Deployment) -> None:
        runs = Runs()
        scheduler = await deployment.scheduler()
        first = await deployment.runner({KIND: runs.handler()})
        run_at = at(1)
        await scheduler.schedule(ScheduledJob(KIND, "t-1", run_at))
        await first.stop()

        await sleep_until(run_at + 0.5 * S)
        assert runs.count("t-1") == 0
        await deployment.runner({KIND: runs.handler()})
        await eventually(lambda: runs.count("t-1") == 1)

    async def test_a_failing_job_is_retried_with_backoff_then_recorded_failed(self, deployment: Deployment) -> None:
        calls: dict[str, int] = {"always": 0, "flaky": 0}

        async def fails(key: str) -> None:
            calls[key] += 1
            if key == "always" or calls[key] == 1:
                raise RuntimeError(f"exchange unreachable ({key} #{calls[key]})")

        policy = JobPolicy(attempts=3, retry_delay=timedelta(milliseconds=100), max_retry_delay=timedelta(seconds=1))
        scheduler = await deployment.scheduler(**{KIND: policy})
        await deployment.runner({KIND: fails})
        await scheduler.schedule(ScheduledJob(KIND, "always", at(0)))
        await scheduler.schedule(ScheduledJob(KIND, "flaky", at(0)))

        await deployment.state_becomes(scheduler, "always", "failed", within=12)
        state = await scheduler.state(KIND, "always")
        assert state is not None and state.attempts == 3 and "exchange unreachable (always #3)" in (state.error or "")
        assert calls["always"] == 3
        await deployment.state_becomes(scheduler, "flaky", "complete")
        assert calls == {"always": 3, "flaky": 2}

    async def test_a_job_needs_an_aware_time(self, deployment: Deployment) -> None:
        scheduler = await deployment.scheduler()
        with pytest.raises(ValueError):
            await scheduler.schedule(ScheduledJob(KIND, "t-1", datetime(2026, 1, 1)))


@pytest.mark.redis
class TestStopping:
    async def test_a_running_job_is_left_to_finish_by_schedule_cancel_and_a_graceful_stop(
        self, deployment: Deployment
    ) -> None:
        runs, finished = Runs(), []
        started = runs.handler()

        async def slow(key: str) -> None:
            await started(key)
            await asyncio.sleep(1.0)
            finished.append(key)

        scheduler = await deployment.scheduler()
        runner = await deployment.runner({KIND: slow})
        await scheduler.schedule(ScheduledJob(KIND, "t-1", at(0)))
        await eventually(lambda: runs.count("t-1") == 1)
        await scheduler.schedule(ScheduledJob(KIND, "t-1", at(0)))  # running: that run stands
        await scheduler.cancel(KIND, "t-1")  # running: left to finish
        await runner.stop()

        assert finished == ["t-1"]
        await deployment.state_becomes(scheduler, "t-1", "complete", within=1)
        await deployment.runner({KIND: slow})
        await asyncio.sleep(1.1)
        assert runs.count("t-1") == 1

    async def test_a_job_still_running_past_the_grace_is_put_back_and_run_again(self, deployment: Deployment) -> None:
        runs, cut_off = Runs(), []
        started = runs.handler()

        async def slow_once(key: str) -> None:
            await started(key)
            if runs.count(key) == 1:
                try:
                    await asyncio.sleep(10)
                except asyncio.CancelledError:
                    cut_off.append(key)
                    raise

        policy = JobPolicy(retry_delay=timedelta(milliseconds=100))
        scheduler = await deployment.scheduler(**{KIND: policy})
        first = await deployment.runner({KIND: slow_once}, grace=timedelta(milliseconds=200))
        await scheduler.schedule(ScheduledJob(KIND, "t-1", at(0)))
        await eventually(lambda: runs.count("t-1") == 1)
        await first.stop()
        assert cut_off == ["t-1"]

        await deployment.runner({KIND: slow_once})
        await eventually(lambda: runs.count("t-1") == 2)
        await deployment.state_becomes(scheduler, "t-1", "complete")


@pytest.mark.redis
class TestPeriodicJobs:
    async def test_a_periodic_job_runs_once_per_slot_across_workers(self, deployment: Deployment) -> None:
        ticks: list[float] = []

        async def tick() -> None:
            ticks.append(time.time())

        for _ in range(2):
            await deployment.runner({}, (Periodic("tick", S, tick),))
        await eventually(lambda: len(ticks) >= 3, within=10)
        gaps = [b - a for a, b in itertools.pairwise(ticks)]
        # One run per one-second slot, never two at once: runs are about a second apart.
        assert all(gap > 0.5 for gap in gaps), gaps


@pytest.mark.redis
class TestLostWork:
    """A worker that dies mid-run, and Redis that loses its data: nothing waits for a job's timeout."""

    async def test_a_periodic_run_its_worker_left_behind_does_not_block_the_next_slots(
        self, deployment: Deployment
    ) -> None:
        """The first run ends cancelled from within (as a round cut off by a stop past its grace):
        SAQ leaves its job active, as it does the job of a killed worker. Without heartbeats the
        poll stood still until the job's timeout (a minute here, 5.5 minutes in the worker)."""
        ticks: list[float] = []

        async def tick() -> None:
            ticks.append(time.time())
            if len(ticks) == 1:
                raise asyncio.CancelledError

        await deployment.runner({}, (Periodic("tick", S, tick, heartbeat=6 * S),))
        await eventually(lambda: len(ticks) >= 1, within=10)
        await eventually(lambda: len(ticks) >= 3, within=25)  # heartbeat, a reaper pass, slots, slack
        assert ticks[1] - ticks[0] > 5.0, "the next slot ran while the first run still counted as alive"

    async def test_a_periodic_run_left_behind_runs_again_at_once_not_at_its_next_slot(
        self, deployment: Deployment
    ) -> None:
        """A daily poll (the reconciliation's minute stands for it) whose run is cut off: the reaper
        queues it again at once, so it runs again within seconds, not at its next slot (midnight)."""
        ticks: list[float] = []

        async def tick() -> None:
            ticks.append(time.time())
            if len(ticks) == 1:
                raise asyncio.CancelledError  # left active, as by a killed worker or a stop past its grace

        daily = Periodic("daily", timedelta(days=1), tick, heartbeat=6 * S)
        queue = await deployment.queue()
        # The slot that is due now, enqueued as SAQ's scheduling does (key, function, limits).
        await queue.enqueue("daily", key="cron:daily", scheduled=int(time.time()), timeout=60, retries=1, ttl=3600)
        await deployment.runner({}, (daily,))
        await eventually(lambda: len(ticks) >= 1, within=10)
        await eventually(lambda: len(ticks) >= 2, within=20)  # heartbeat, a reaper pass, slack
        assert ticks[1] - ticks[0] > 5.0, "run again while the first run still counted as alive"
        # The second run was no slot's: the next slot, queued once that run ended, is still ahead.
        deadline = time.monotonic() + 5
        while (record := await queue.job("cron:daily")) is None or record.status.value != "queued":
            assert time.monotonic() < deadline, record
            await asyncio.sleep(0.05)
        assert record.scheduled > ticks[1], record

    async def test_a_cut_off_run_that_was_run_again_elsewhere_is_cancelled_once_its_heartbeat_returns(
        self, deployment: Deployment
    ) -> None:
        """The record of a run is replaced (as the reaper does while its worker is cut off from
        Redis): the run's next heartbeat sees it and cancels the run, which then writes nothing
        over the record of the run that replaced it."""
        started, cancelled = asyncio.Event(), asyncio.Event()

        async def slow() -> None:
            started.set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        queue = await deployment.queue()
        await queue.enqueue("slow", key="cron:slow", scheduled=int(time.time()), timeout=60, retries=1, ttl=3600)
        await deployment.runner({}, (Periodic("slow", timedelta(days=1), slow, heartbeat=6 * S),))
        await asyncio.wait_for(started.wait(), 10)
        replaced = await queue.job("cron:slow")
        assert replaced is not None
        replaced.error = "replaced by a test"
        await queue.redis.set(replaced.id, queue.serialize(replaced))
        await asyncio.wait_for(cancelled.wait(), 10)
        await asyncio.sleep(0.5)
        after = await queue.job("cron:slow")
        assert after is not None and after.error == "replaced by a test", after

    async def test_a_periodic_run_longer_than_its_heartbeat_is_not_ended_while_its_worker_lives(
        self, deployment: Deployment
    ) -> None:
        runs: list[tuple[float, float]] = []
        cancelled: list[float] = []

        async def slow() -> None:
            started = time.time()
            try:
                await asyncio.sleep(8.0 if not runs else 0.0)
            except asyncio.CancelledError:
                cancelled.append(time.time())
                raise
            runs.append((started, time.time()))

        for name in ("a", "b"):
            await deployment.runner({}, (Periodic("slow", S, slow, heartbeat=5 * S),), worker_id=f"worker-{name}")
        await eventually(lambda: len(runs) >= 2, within=20)
        assert cancelled == []
        first, second = runs[0], runs[1]
        assert first[1] - first[0] >= 8.0 and second[0] >= first[1] - 0.05, runs  # never two at once

    async def test_a_running_jobs_lost_record_comes_back_and_is_never_scheduled_twice(
        self, deployment: Deployment, redis_url: str
    ) -> None:
        runs = Runs()
        scheduler = await deployment.scheduler()
        await deployment.runner({KIND: runs.handler(pause=9.0)})
        job = ScheduledJob(KIND, "t-1", at(0))
        await scheduler.schedule(job)
        await eventually(lambda: runs.count("t-1") == 1)
        await _flush_queue(redis_url, deployment.prefix)
        assert await scheduler.state(KIND, "t-1") is None

        rescheduled = []
        deadline = time.monotonic() + 7.0
        while time.monotonic() < deadline:  # the strategy agent's looks, every second
            rescheduled.append(await scheduler.ensure(job))
            await asyncio.sleep(0.5)
        assert not any(rescheduled)
        state = await scheduler.state(KIND, "t-1")
        assert state is not None and state.status == "active", state  # back from the running worker
        await deployment.state_becomes(scheduler, "t-1", "complete", within=8)
        assert runs.count("t-1") == 1

    async def test_a_waiting_job_redis_lost_is_scheduled_again_once_and_runs_once(
        self, deployment: Deployment, redis_url: str
    ) -> None:
        runs = Runs()
        scheduler, other = await deployment.scheduler(), await deployment.scheduler()
        await deployment.runner({KIND: runs.handler()})
        run_at = at(12)
        job = ScheduledJob(KIND, "t-1", run_at)
        await scheduler.schedule(job)
        await _flush_queue(redis_url, deployment.prefix)

        rescheduled = []
        looked_from = time.monotonic()
        while time.monotonic() - looked_from < 8.0:  # two workers' agents looking every second
            rescheduled += [await scheduler.ensure(job), await other.ensure(job)]
            await asyncio.sleep(0.5)
        assert rescheduled.count(True) == 1, rescheduled
        state = await scheduler.state(KIND, "t-1")
        assert state is not None and state.status == "queued" and state.due_at is not None
        assert abs((state.due_at - run_at).total_seconds()) < 0.01

        await eventually(lambda: runs.count("t-1") == 1, within=LATE + (run_at - datetime.now(UTC)).total_seconds())
        assert runs.started("t-1") >= run_at.timestamp() - 0.05
        await asyncio.sleep(1.1)
        assert runs.count("t-1") == 1


async def _flush_queue(redis_url: str, prefix: str) -> None:
    """Every key of the queue gone, as when Redis loses its data (the test's keys only: the Redis is shared)."""
    client = redis_client(redis_url)
    try:
        for namespace in (f"saq:{prefix}", f"saq:job:{prefix}"):
            await delete_prefixed(client, namespace)
    finally:
        await client.aclose()


class TestConfiguration:
    @pytest.mark.parametrize(
        ("every", "cron"),
        [
            (S, "* * * * * */1"),
            (30 * S, "* * * * * */30"),
            (timedelta(minutes=1), "*/1 * * * *"),
            (timedelta(minutes=15), "*/15 * * * *"),
            (timedelta(hours=6), "0 */6 * * *"),
            ("0 3 * * *", "0 3 * * *"),
        ],
    )
    def test_a_periodic_interval_is_a_cron_schedule(self, every: timedelta | str, cron: str) -> None:
        assert Periodic("p", every, _never).cron == cron

    @pytest.mark.parametrize("every", [45 * S, 1.5 * S, timedelta(minutes=7), timedelta(hours=5), timedelta(0)])
    def test_an_interval_that_does_not_divide_a_minute_hour_or_day_is_refused(self, every: timedelta) -> None:
        with pytest.raises(ValueError):
            _ = Periodic("p", every, _never).cron

    def test_names_must_be_distinct(self) -> None:
        with pytest.raises(ValueError, match="sync"):
            JobRunner(object(), {"sync": _handler}, (Periodic("sync", S, _never),))  # type: ignore[arg-type]

    def test_a_heartbeat_leaves_room_for_late_touches(self) -> None:
        # A live run whose touches come a little late must never be taken for dead.
        with pytest.raises(ValueError, match="heartbeat is at least 5 s: quick"):
            JobRunner(object(), {}, (Periodic("quick", S, _never, heartbeat=4 * S),))  # type: ignore[arg-type]

    def test_a_retry_needs_a_delay(self) -> None:
        # SAQ would run a scheduled job twice after a retry without one.
        with pytest.raises(ValueError):
            JobPolicy(retry_delay=timedelta(0))
        with pytest.raises(ValueError):
            JobPolicy(attempts=0)


async def _never() -> None:
    raise AssertionError("not run in these tests")


async def _handler(key: str) -> None:
    raise AssertionError("not run in these tests")
