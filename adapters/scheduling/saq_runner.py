"""Running the jobs: a SAQ worker on the deployment's job queue.

Run a JobRunner in each worker process, as many as wanted: each job, scheduled or periodic,
still runs on one of them. Every runner on a queue needs the same handlers and periodic
jobs: whichever runner takes a job runs it, and a kind it has no handler for fails. SAQ does the
work; this module gives it our handlers and makes a stop graceful:
- stop() takes no new jobs, lets the jobs in flight finish for up to `grace`, then cancels
  the ones left and puts them back on the queue (SAQ retries them: a retry of ExecuteSnipe
  resolves the order it may have sent); an idle runner stops within `idle_wait`.
- SAQ's worker would install SIGINT/SIGTERM handlers: here the process's owner decides
  when to stop, so it does not.
- A worker that dies without stopping leaves its jobs marked active; a live worker's sweep
  (every `sweep_every`) runs one again once it is past its timeout (see JobPolicy).
- Every running job's record is written again every TOUCH_EVERY by its worker (its heartbeat):
  a periodic run whose heartbeat stops for `Periodic.heartbeat` (its worker killed, stopped
  past its grace, or cut off from Redis) is ended by any live runner and queued to run again
  at once (a reconciliation round cut short must not wait for its next slot, a minute away,
  to record a fill), rather than after the run's timeout; and a record Redis lost (a flush)
  while its job runs comes back, which tells SaqScheduler.ensure that job is not lost.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any

from saq import CronJob, Job, Queue, Status, Worker
from saq.queue.redis import RedisQueue
from saq.utils import now as now_ms

logger = logging.getLogger(__name__)

Handler = Callable[[str], Awaitable[object]]
PeriodicRun = Callable[[], Awaitable[object]]

# What a job's record keeps of its handler's return value, as text (SAQ stores it as JSON).
_RESULT_CHARS = 1000

# How often a worker writes again the record of each job it runs (see the module doc).
TOUCH_EVERY = timedelta(seconds=1)
# How often each runner looks for periodic runs whose heartbeat stopped.
_REAP_EVERY = timedelta(seconds=2)

# KEYS: job id. ARGV: the record as last written, the new one. Writes the new record while the
# stored one is still ours (or gone: Redis lost it); 0 when another wrote it since (the run was
# ended as presumed dead, or a new run of the key replaced it): the worker stops touching it.
_TOUCH = """
local stored = redis.call('GET', KEYS[1])
if stored and stored ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""

# KEYS: active, incomplete, queued, job id. ARGV: the record as read, the record of the run again.
# Only if the record did not change since it was read (no heartbeat came meanwhile): ends the
# run and queues the job to run at once, in one step (as SAQ's own retry does), so no runner's
# scheduling of the next slot comes between and puts the re-run off until that slot.
_REAP = """
if redis.call('GET', KEYS[4]) ~= ARGV[1] then
  return 0
end
redis.call('LREM', KEYS[1], 0, KEYS[4])
redis.call('LREM', KEYS[3], 0, KEYS[4])
redis.call('ZADD', KEYS[2], 0, KEYS[4])
redis.call('RPUSH', KEYS[3], KEYS[4])
redis.call('SET', KEYS[4], ARGV[2])
return 1
"""


@dataclass(frozen=True, slots=True)
class Periodic:
    """A job run again and again: calendar sync, symbol polling, reconciliation.

    `every` is an interval that divides a minute (whole seconds), an hour (whole minutes) or
    a day (whole hours), or a cron expression (croniter's; a sixth field is seconds). Runs
    are due at its slots (multiples of the interval since midnight UTC), one run per slot
    across all workers. Runs never overlap: a slot that comes while the last run is still
    going is skipped. A failed run is not retried: the next slot is its retry.
    A run whose worker stops its heartbeat (see TOUCH_EVERY) for `heartbeat` is presumed dead,
    ended and run again at once on a live worker (then the slots go on); a live worker cut off
    from Redis that long has its run cancelled once its heartbeat reaches Redis again.
    """

    name: str
    every: timedelta | str
    run: PeriodicRun
    timeout: timedelta = timedelta(minutes=1)
    heartbeat: timedelta = timedelta(seconds=10)

    @property
    def cron(self) -> str:
        if isinstance(self.every, str):
            return self.every
        return cron_of(self.every)


def cron_of(every: timedelta) -> str:
    """The cron expression of an interval's slots (multiples of it since midnight UTC); ValueError
    when the interval makes no whole slots."""
    seconds = every.total_seconds()
    if seconds > 0 and seconds == int(seconds):
        s = int(seconds)
        if s < 60 and 60 % s == 0:
            return f"* * * * * */{s}"
        if s % 60 == 0 and s < 3600 and 3600 % s == 0:
            return f"*/{s // 60} * * * *"
        if s % 3600 == 0 and 86400 % s == 0:
            return f"0 */{s // 3600} * * *"
    raise ValueError(
        f"a periodic interval must divide a minute, an hour or a day, got {every}; use a cron expression instead"
    )


class JobRunner:
    """A SAQ worker running `handlers[kind](key)` for each scheduled job of that kind, and the
    `periodic` jobs at their slots. Start once, stop once (or use it as an async context)."""

    def __init__(
        self,
        queue: Queue,
        handlers: Mapping[str, Handler],
        periodic: Sequence[Periodic] = (),
        *,
        concurrency: int = 10,
        grace: timedelta = timedelta(seconds=30),
        idle_wait: timedelta = timedelta(seconds=1),
        sweep_every: timedelta = timedelta(minutes=1),
        worker_id: str | None = None,
    ) -> None:
        names = [*handlers, *(p.name for p in periodic)]
        clashing = sorted({n for n in names if names.count(n) > 1})
        if clashing:
            raise ValueError(f"each job kind and periodic job needs its own name: {', '.join(clashing)}")
        if concurrency < 1 or grace < timedelta(0) or idle_wait <= timedelta(0):
            raise ValueError("a runner needs concurrency >= 1, a grace >= 0 and a positive idle_wait")
        if sweep_every < timedelta(seconds=1) or sweep_every.total_seconds() != int(sweep_every.total_seconds()):
            raise ValueError(f"sweep_every is whole seconds, at least one, got {sweep_every}")
        # A few touches may be late (a busy loop, a Redis blip) before a live run is taken for dead.
        shortest = 3 * TOUCH_EVERY + _REAP_EVERY
        slow = sorted(p.name for p in periodic if p.heartbeat < shortest)
        if slow:
            raise ValueError(
                f"a periodic job's heartbeat is at least {shortest.total_seconds():g} s: {', '.join(slow)}"
            )
        if not isinstance(queue, RedisQueue):
            raise TypeError(f"a JobRunner works on a SAQ Redis queue (see job_queue), got {type(queue).__name__}")
        self._started = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        touch = queue.redis.register_script(_TOUCH)
        self._worker = _Worker(
            queue,
            [(kind, _scheduled_job(kind, handler, touch)) for kind, handler in handlers.items()],
            cron_jobs=[
                CronJob(_periodic_job(p, touch), p.cron, unique=True, timeout=_whole_seconds(p.timeout), retries=1,
                        ttl=3600)
                for p in periodic
            ],
            concurrency=concurrency,
            startup=self._on_startup,
            shutdown_grace_period_s=grace.total_seconds(),  # type: ignore[arg-type]  # any number of seconds
            dequeue_timeout=idle_wait.total_seconds(),
            # saq's PartialTimersDict keeps TimersDict's keys required (its total=False only covers its own keys).
            timers={"sweep": int(sweep_every.total_seconds())},  # type: ignore[arg-type]
            id=worker_id,
        )
        # Read by this runner's reaper, not written into the jobs: SAQ's sweep would act on a job's
        # heartbeat too, less often and with an abort that bars the next slot for 5 s.
        self._worker.heartbeats = {f"cron:{p.name}": p.heartbeat for p in periodic}

    async def start(self) -> None:
        """Begin taking jobs; returns once the worker runs."""
        if self._task is not None:
            raise RuntimeError("a JobRunner starts once")
        self._task = asyncio.create_task(self._worker.start(), name=f"saq-worker-{self._worker.id}")
        started = asyncio.create_task(self._started.wait())
        await asyncio.wait({started, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if not self._started.is_set():
            started.cancel()
            self._task.result()  # raises what stopped the worker
            raise RuntimeError("the job worker stopped while starting")

    async def stop(self) -> None:
        """Take no new jobs; give those in flight `grace` to finish, then cancel and requeue them."""
        if self._task is None or self._task.done():
            return
        self._worker.event.set()
        await self._task

    async def __aenter__(self) -> JobRunner:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _on_startup(self, _ctx: Any) -> None:
        self._started.set()


class _Worker(Worker):
    """SAQ's worker with its upkeep loops woken by a stop rather than finishing their sleep
    (the sweep sleeps a minute), since Worker.stop waits for every task: a stop then waits
    only for the jobs in flight; and one more upkeep loop, the reaper of periodic runs whose
    heartbeat stopped (`reap`)."""

    SIGNALS: list = []  # the process's owner stops the runner; the worker must not take the signals
    heartbeats: Mapping[str, timedelta] = {}  # periodic job key -> its Periodic.heartbeat

    async def reap(self, _arg: object = None) -> list[str]:
        """End the periodic runs whose heartbeat stopped (see Periodic) and queue each to run again
        at once; their keys."""
        queue = self.queue
        if not isinstance(queue, RedisQueue):  # not reached: JobRunner refuses any other queue
            raise TypeError(f"a JobRunner works on a SAQ Redis queue, got {type(queue).__name__}")
        keys = list(self.heartbeats)
        if not keys:
            return []
        reaped = []
        for key, raw in zip(keys, await queue.redis.mget([queue.job_id(k) for k in keys]), strict=True):
            job = queue.deserialize(raw)
            if job is None or job.status != Status.ACTIVE:
                continue
            silent_ms = now_ms() - max(job.touched, job.started)
            if silent_ms <= self.heartbeats[key].total_seconds() * 1000:
                continue
            worker = job.worker_id
            job.error = f"no heartbeat from worker {worker} for {silent_ms / 1000:.0f} s: presumed dead, run again"
            # What SAQ's retry writes: queued anew, nothing of the dead run's progress kept.
            job.status, job.started, job.completed, job.progress, job.touched = Status.QUEUED, 0, 0, 0, now_ms()
            ended = await self._reap_script(
                keys=[queue.namespace("active"), queue.namespace("incomplete"), queue.namespace("queued"), job.id],
                args=[raw, queue.serialize(job)],
            )
            if ended:
                logger.warning("periodic job %s: %s at once on a live worker", job.key, job.error)
                reaped.append(job.key)
        return reaped

    @functools.cached_property
    def _reap_script(self) -> Any:
        if not isinstance(self.queue, RedisQueue):  # not reached: JobRunner refuses any other queue
            raise TypeError(f"a JobRunner works on a SAQ Redis queue, got {type(self.queue).__name__}")
        return self.queue.redis.register_script(_REAP)

    async def upkeep(self) -> list[asyncio.Task[None]]:
        async def every(interval: float, step: Callable[[Any], Awaitable[object]], arg: Any) -> None:
            while not self.event.is_set():
                try:
                    await step(arg)
                except Exception:
                    logger.exception("job queue upkeep failed; trying again")
                with suppress(TimeoutError):
                    await asyncio.wait_for(self.event.wait(), interval)

        timers = self.timers
        return [
            asyncio.create_task(every(timers["abort"], self.abort, timers["abort"])),
            # The argument is how long the step's lock is held: one pass per queue per period.
            asyncio.create_task(every(timers["schedule"], self.schedule, timers["schedule"])),
            asyncio.create_task(every(timers["sweep"], self.queue.sweep, timers["sweep"])),
            asyncio.create_task(every(timers["worker_info"], self.worker_info, timers["worker_info"] + 1)),
            asyncio.create_task(every(_REAP_EVERY.total_seconds(), self.reap, None)),
        ]


def _scheduled_job(kind: str, handler: Handler, touch: Any) -> Callable[..., Awaitable[str | None]]:
    async def run(ctx: Any, *, key: str) -> str | None:
        async with _touching(ctx["job"], touch):
            return _as_text(await handler(key))

    run.__name__ = run.__qualname__ = kind
    return run


def _periodic_job(periodic: Periodic, touch: Any) -> Callable[..., Awaitable[str | None]]:
    async def run(ctx: Any) -> str | None:
        async with _touching(ctx["job"], touch, cancel_when_taken_over=True):
            return _as_text(await periodic.run())

    # SAQ names a cron job's function, and its unique job key `cron:<name>`, by __qualname__.
    run.__name__ = run.__qualname__ = periodic.name
    return run


@asynccontextmanager
async def _touching(job: Job, touch: Any, *, cancel_when_taken_over: bool = False) -> AsyncIterator[None]:
    """The job's heartbeat for the length of the block: its record written again, `touched`
    renewed, every TOUCH_EVERY, until another writer takes the record over. Then, with
    `cancel_when_taken_over` (a periodic run ended as presumed dead, queued again and perhaps
    running elsewhere by now; or, after Redis lost its data, the next slot queued under the same
    key: the poll runs then), the block's task is cancelled from within: SAQ then writes
    nothing more of this run, so its end cannot overwrite the record of the run that replaced
    it (a run ending before its heartbeat reaches Redis again still can: the next slot mends)."""
    queue = job.get_queue()
    if not isinstance(queue, RedisQueue):  # not reached: JobRunner refuses any other queue
        raise TypeError(f"a JobRunner works on a SAQ Redis queue, got {type(queue).__name__}")
    owner = asyncio.current_task()

    async def beat() -> None:
        try:
            last = await queue.redis.get(job.id)
        except Exception:  # noqa: BLE001 - a heartbeat must never fail the job
            last = queue.serialize(job)  # what the worker wrote as it took the job
        while True:
            await asyncio.sleep(TOUCH_EVERY.total_seconds())
            job.touched = now_ms()
            record = queue.serialize(job)
            try:
                ours = await touch(keys=[job.id], args=[last or b"", record])
            except Exception as exc:  # noqa: BLE001 - Redis unreachable: the next beat tries again
                logger.warning("heartbeat of job %s not written: %s", job.key, exc)
                continue
            if not ours:
                logger.warning("job %s was taken over in the queue (ended as presumed dead, or run anew): "
                               "its heartbeat stops here%s", job.key,
                               "; this run is cancelled" if cancel_when_taken_over else "")
                if cancel_when_taken_over and owner is not None:
                    owner.cancel()
                return
            last = record

    beating = asyncio.create_task(beat(), name=f"heartbeat:{job.key}")
    try:
        yield
    finally:
        # Not waited for: a beat still on its way finds the record rewritten by the job's end and
        # leaves it alone.
        beating.cancel()


def _as_text(result: object) -> str | None:
    # A use case's result (a dataclass) is no JSON; failing to store it would fail the job.
    return None if result is None else str(result)[:_RESULT_CHARS]


def _whole_seconds(span: timedelta) -> int:
    return max(1, -(-span // timedelta(seconds=1)))
