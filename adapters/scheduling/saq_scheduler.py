"""Durable timed jobs on SAQ over Redis: the production Scheduler.

SAQ keeps a queue in Redis: each job's record at `saq:job:<queue>:<job key>`, the ids of
unfinished jobs in the sorted set `saq:<queue>:incomplete` (scored by the epoch second they
are due, 0 once due), the due ones in the list `saq:<queue>:queued`, the taken ones in
`saq:<queue>:active`. Workers (saq_runner.JobRunner) move due jobs to the queued list about
once a second under a shared lock and take each one with an atomic BLMOVE, so a job runs on
one worker however many there are, and it outlives any worker because it lives in Redis.

One job per (kind, key): its SAQ job key is `<kind>:<key>`. SAQ's own enqueue refuses a key
that is still pending, which would keep the old time where the port asks for the new one,
and SAQ's abort cancels a running job. So scheduling and cancelling are Lua scripts over
those keys, atomic against the workers:
- schedule: a job waiting for its time (or for a retry) moves to the new time; a job due
  but not yet taken is taken back and moves; a job running right now is left alone (that
  run is the job: ExecuteSnipe resolves whatever it finds); otherwise a new job is written.
- cancel: removes a job not yet taken; a running job is left to finish, since cutting a
  snipe off mid-order is worse than letting it find its target cancelled.
- ensure: writes a job only where the queue holds no record of it at all: Redis lost it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from saq import Job, Queue, Status
from saq.queue.redis import RedisQueue

from adapters.redis import redis_client
from adapters.scheduling.saq_runner import TOUCH_EVERY
from application.ports import ScheduledJob

logger = logging.getLogger(__name__)

# KEYS: incomplete, queued, job id. ARGV: the job's record, the epoch second it is due.
# 1 when written, 0 when the job is running and was left alone.
_SCHEDULE = """
local score = redis.call('ZSCORE', KEYS[1], KEYS[3])
if score and tonumber(score) == 0 and redis.call('LREM', KEYS[2], 0, KEYS[3]) == 0 then
  return 0
end
redis.call('SET', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], KEYS[3])
return 1
"""

# KEYS: incomplete, job id. ARGV: the job's record, the epoch second it is due. 1 when written,
# 0 when the queue holds a record of the job (waiting, running or finished).
_RESTORE = """
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], KEYS[2])
return 1
"""

# A job's record missing this long is lost: a job running on a live worker gets its record back
# from that worker's heartbeat (every TOUCH_EVERY) well before.
_LOST_AFTER = 5 * TOUCH_EVERY

# KEYS: incomplete, queued, job id. 1 when removed, 0 when nothing was pending, -1 when running.
_CANCEL = """
local score = redis.call('ZSCORE', KEYS[1], KEYS[3])
if not score then
  return 0
end
if tonumber(score) == 0 and redis.call('LREM', KEYS[2], 0, KEYS[3]) == 0 then
  return -1
end
redis.call('ZREM', KEYS[1], KEYS[3])
redis.call('DEL', KEYS[3])
return 1
"""


@asynccontextmanager
async def job_queue(url: str, prefix: str) -> AsyncIterator[Queue]:
    """The deployment's job queue, `<prefix>:jobs`, open for the life of the block.

    It has a Redis client of its own: SAQ closes its client when the queue disconnects, and
    idle workers hold pooled connections in blocking reads.
    """
    if not prefix:
        raise ValueError("a Redis key prefix is needed (one per deployment)")
    queue = RedisQueue(redis_client(url), name=f"{prefix}:jobs")
    await queue.connect()
    try:
        yield queue
    finally:
        await queue.disconnect()


def job_key(kind: str, key: str) -> str:
    """The SAQ job key of (kind, key): one job per pair."""
    return f"{kind}:{key}"


@dataclass(frozen=True, slots=True)
class JobPolicy:
    """How the workers run one kind of scheduled job; written into each job as it is scheduled.

    `attempts`: runs in all, the first included. A run that raises (or outlives `timeout`)
    is tried again after a random delay of up to `retry_delay`, doubling each retry up to
    `max_retry_delay`; after the last attempt the job is recorded as failed, with the
    traceback, and kept for `keep_for` like a finished one.
    `timeout`: a run still going after it is cancelled. It is also how long a job whose
    worker died mid-run waits before a worker's sweep (see JobRunner) runs it again, so it
    should be about the longest a healthy run takes.
    `head_start`: the job is due this much before its run_at, for kinds that wait for their
    own moment (ExecuteSnipe sleeps until its send time): it absorbs the up to ~2 s the
    workers may take to notice a due job.
    """

    timeout: timedelta = timedelta(minutes=2)
    attempts: int = 3
    retry_delay: timedelta = timedelta(seconds=1)
    max_retry_delay: timedelta = timedelta(minutes=1)
    head_start: timedelta = timedelta(0)
    keep_for: timedelta = timedelta(days=1)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"a job needs at least one attempt, got {self.attempts}")
        if self.timeout < timedelta(seconds=1) or self.keep_for < timedelta(seconds=1):
            raise ValueError("a job's timeout and keep_for are whole seconds, at least one")
        # SAQ puts a retry with no delay both back on the due list and in the schedule,
        # which a scheduled job then leaves twice: it would run twice.
        if self.retry_delay <= timedelta(0) or self.max_retry_delay < self.retry_delay:
            raise ValueError("a retry needs a positive delay, no more than max_retry_delay")
        if self.head_start < timedelta(0):
            raise ValueError(f"a head start cannot be negative, got {self.head_start}")


@dataclass(frozen=True, slots=True)
class JobState:
    """What the queue knows of one job, for operators and tests.

    `status`: queued (waiting for its time, or due), active, complete, failed or aborted.
    `due_at`: when workers may take it (run_at less the head start).
    `error`: the traceback of the last failed attempt. `result`: what the handler returned, as text.
    """

    status: str
    due_at: datetime | None
    attempts: int
    error: str | None
    result: str | None


class SaqScheduler:
    """The Scheduler port on a SAQ queue: one job per (kind, key), run once by one worker.

    The job calls the handler its worker has for `kind` with `key` (see JobRunner).
    """

    def __init__(
        self,
        queue: Queue,
        policies: Mapping[str, JobPolicy] | None = None,
        default_policy: JobPolicy = JobPolicy(),
    ) -> None:
        if not isinstance(queue, RedisQueue):
            raise TypeError(f"SaqScheduler works on a SAQ Redis queue (see job_queue), got {type(queue).__name__}")
        self._queue = queue
        self._policies = dict(policies or {})
        self._default_policy = default_policy
        self._incomplete = queue.namespace("incomplete")
        self._queued = queue.namespace("queued")
        self._schedule = queue.redis.register_script(_SCHEDULE)
        self._cancel = queue.redis.register_script(_CANCEL)
        self._restore = queue.redis.register_script(_RESTORE)
        self._missing_since: dict[str, float] = {}  # job id -> when first found missing (monotonic)

    async def schedule(self, job: ScheduledJob) -> None:
        record, due = self._record(job)
        written = await self._schedule(
            keys=[self._incomplete, self._queued, self._queue.job_id(job_key(job.kind, job.key))],
            args=[record, repr(due)],
        )
        if not written:
            logger.info("%s %s is running now: that run stands, not scheduled again for %s",
                        job.kind, job.key, job.run_at)

    async def ensure(self, job: ScheduledJob) -> bool:
        """Schedule `job` again if the queue lost it (Redis lost its data: no persistence, a
        failover, a flush): when it holds no record of (kind, key), neither waiting, running nor
        finished (kept keep_for), on two looks at least _LOST_AFTER apart. A job running on a live
        worker gets its lost record back from that worker's heartbeat in between, so it is never
        run twice at once. True when scheduled again; call it again and again (every second or so)."""
        job_id = self._queue.job_id(job_key(job.kind, job.key))
        if await self._queue.redis.exists(job_id):
            self._missing_since.pop(job_id, None)
            return False
        now, lost_after = time.monotonic(), _LOST_AFTER.total_seconds()
        first = self._missing_since.get(job_id)
        if first is None or now - first > 3 * lost_after:  # not looked at since: a first look again
            self._missing_since = {k: t for k, t in self._missing_since.items() if now - t <= 3 * lost_after}
            self._missing_since[job_id] = now
            return False
        if now - first < lost_after:
            return False
        del self._missing_since[job_id]
        record, due = self._record(job)
        if not await self._restore(keys=[self._incomplete, job_id], args=[record, repr(due)]):
            return False
        logger.warning("%s %s was lost by the job queue (Redis lost its data): scheduled again for %s",
                       job.kind, job.key, job.run_at)
        return True

    def _record(self, job: ScheduledJob) -> tuple[bytes | str, float]:
        """The SAQ record of `job` and the epoch second it is due."""
        if job.run_at.tzinfo is None:
            raise ValueError(f"a job's run_at must be an aware datetime, got {job.run_at}")
        policy = self._policies.get(job.kind, self._default_policy)
        due = (job.run_at - policy.head_start).timestamp()
        record = Job(
            function=job.kind,
            kwargs={"key": job.key},
            queue=self._queue,
            key=job_key(job.kind, job.key),
            timeout=_whole_seconds(policy.timeout),
            retries=policy.attempts,
            retry_delay=policy.retry_delay.total_seconds(),
            retry_backoff=policy.max_retry_delay.total_seconds(),
            ttl=_whole_seconds(policy.keep_for),
            scheduled=due,  # type: ignore[arg-type]  # SAQ on Redis takes fractions of a second
            queued=int(time.time() * 1000),
            status=Status.QUEUED,
        )
        return self._queue.serialize(record), due

    async def cancel(self, kind: str, key: str) -> None:
        outcome = await self._cancel(keys=[self._incomplete, self._queued, self._queue.job_id(job_key(kind, key))])
        if outcome == -1:
            logger.info("%s %s is running now: left to finish", kind, key)

    async def state(self, kind: str, key: str) -> JobState | None:
        """None when the queue holds no job (cancelled, or finished longer than keep_for ago)."""
        found = await self._queue.job(job_key(kind, key))
        if found is None:
            return None
        return JobState(
            status=found.status.value,
            due_at=datetime.fromtimestamp(found.scheduled, UTC) if found.scheduled else None,
            attempts=found.attempts,
            error=found.error,
            result=None if found.result is None else str(found.result),
        )


def _whole_seconds(span: timedelta) -> int:
    return math.ceil(span.total_seconds())
