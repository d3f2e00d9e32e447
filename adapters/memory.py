"""In-process twins of the coordination adapters: scheduler, locks, cache, rate counters,
event fan-out, trader directory. Each behaves as its Redis twin in adapters/redis/ does
(tests/adapters/test_redis_contract.py runs both on the same tests)."""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from application.errors import NotFound, SubscriptionLost
from application.ports import AgentStatus, Clock, CounterResult, Lease, ScheduledJob, TraderSettings


class InMemoryScheduler:
    """Timed jobs held in the process; the runner asks for what is due."""

    def __init__(self) -> None:
        self._jobs: dict[tuple[str, str], ScheduledJob] = {}

    async def schedule(self, job: ScheduledJob) -> None:
        self._jobs[(job.kind, job.key)] = job

    async def cancel(self, kind: str, key: str) -> None:
        self._jobs.pop((kind, key), None)

    async def ensure(self, job: ScheduledJob) -> bool:
        # Nothing is lost while the process lives; a restarted one starts empty, and the strategy
        # agent schedules again what the store says is scheduled.
        return False

    def next_run_at(self) -> datetime | None:
        return min((j.run_at for j in self._jobs.values()), default=None)

    def take_due(self, now: datetime) -> list[ScheduledJob]:
        due = sorted((j for j in self._jobs.values() if j.run_at <= now), key=lambda j: (j.run_at, j.key))
        for job in due:
            del self._jobs[(job.kind, job.key)]
        return due

    @property
    def pending(self) -> list[ScheduledJob]:
        return sorted(self._jobs.values(), key=lambda j: j.run_at)


class InMemoryLockService:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._held: dict[str, tuple[datetime, Lease]] = {}  # key -> (expires at, its holder)
        self._fences: dict[str, int] = {}  # key -> last token handed out; kept, like Redis's fence counter
        self._epochs: dict[str, tuple[str, datetime]] = {}  # key -> its fence counter's epoch and start

    @asynccontextmanager
    async def lease(self, key: str, ttl: timedelta) -> AsyncIterator[Lease | None]:
        _check_ttl(ttl)
        now = self._clock.now()
        held = self._held.get(key)
        if held is not None and held[0] > now:
            yield None
            return
        first = key not in self._fences
        if first:  # the counter starts (again): a new epoch, as the Redis twin's take script does
            self._epochs[key] = (secrets.token_hex(8), now)
        epoch, started_at = self._epochs[key]
        lease = Lease(key, self._fences.get(key, 0) + 1, first=first, epoch=epoch, epoch_started_at=started_at)
        self._fences[key] = lease.token
        self._held[key] = (now + ttl, lease)
        try:
            yield lease
        finally:
            # A holder whose lease lapsed and was taken over must not release its successor (nor
            # one that got the same token after lose_data: the holder is this very lease).
            current = self._held.get(key)
            if current is not None and current[1] is lease:
                del self._held[key]

    async def renew(self, lease: Lease, ttl: timedelta) -> bool:
        _check_ttl(ttl)
        now = self._clock.now()
        current = self._held.get(lease.key)
        if current is None or current[1] is not lease or current[0] <= now:
            return False
        self._held[lease.key] = (now + ttl, lease)
        return True

    def lose_data(self) -> None:
        """Forget every lease and fence counter, as Redis does on a restart without persistence, a
        failover or a flush (for tests): earlier holders are not told, and tokens start again."""
        self._held.clear()
        self._fences.clear()
        self._epochs.clear()


def _check_ttl(ttl: timedelta) -> None:
    if ttl <= timedelta(0):
        raise ValueError(f"a lease needs a positive ttl, got {ttl}")


class InMemoryCache:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._data: dict[str, tuple[bytes, datetime | None]] = {}

    async def get(self, key: str) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and expires <= self._clock.now():
            del self._data[key]
            return None
        return value

    async def set(self, key: str, value: bytes, ttl: timedelta | None = None) -> None:
        self._data[key] = (value, self._clock.now() + ttl if ttl is not None else None)

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)


class InMemoryRequestCounter:
    """Sliding-window log: the times of the allowed hits of the last window, per key."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._logs: dict[str, deque[datetime]] = {}

    async def hit(self, key: str, window: timedelta, limit: int) -> CounterResult:
        if window <= timedelta(0) or limit < 1:
            raise ValueError(f"a request limit needs a positive window and limit, got {window} and {limit}")
        now = self._clock.now()
        log = self._logs.setdefault(key, deque())
        while log and log[0] + window <= now:
            log.popleft()
        if len(log) < limit:
            log.append(now)
            return CounterResult(True, len(log), timedelta(0))
        return CounterResult(False, len(log), log[0] + window - now)


# A live subscriber this many events behind is dropped (it catches up from the event store).
MAX_PENDING_EVENTS = 4096


class InMemoryEventFanout:
    """Each subscriber has its own queue: publishing never waits for a reader.

    A subscriber with `max_pending` unread events is dropped: it reads what it had, then
    SubscriptionLost. The bound keeps a slow reader's backlog small (a few MB at the sizes
    of our events), however many streams are open. The Redis fan-out hands what its one
    subscription receives to one of these.
    """

    def __init__(self, max_pending: int = MAX_PENDING_EVENTS) -> None:
        self._max_pending = max_pending
        self._subscribers: dict[str, set[_MemorySubscription]] = {}

    async def publish(self, user_id: str, recorded_event_json: bytes) -> None:
        for subscription in list(self._subscribers.get(user_id, ())):
            if not subscription.offer(recorded_event_json, self._max_pending):
                self._drop(user_id, subscription)

    @asynccontextmanager
    async def subscribe(self, user_id: str) -> AsyncIterator[AsyncIterator[bytes]]:
        subscription = _MemorySubscription(user_id)
        self._subscribers.setdefault(user_id, set()).add(subscription)
        try:
            yield subscription
        finally:
            self._drop(user_id, subscription)
            subscription.close()

    def drop_everyone(self, why: str) -> None:
        """Every current subscriber is cut off (the feed they hang on broke: events may be missing)."""
        subscribers, self._subscribers = self._subscribers, {}
        for subscriptions in subscribers.values():
            for subscription in subscriptions:
                subscription.lose(why)

    def _drop(self, user_id: str, subscription: _MemorySubscription) -> None:
        subscribers = self._subscribers.get(user_id)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscribers[user_id]


_LOST = object()  # queued after the last event a dropped subscriber gets


class _MemorySubscription:
    def __init__(self, user_id: str) -> None:
        self._user_id = user_id
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._lost: str | None = None  # why it was dropped
        self._closed = False

    def offer(self, event: bytes, max_pending: int) -> bool:
        """False when this subscriber is too far behind and is now dropped."""
        if self._lost is not None or self._closed:
            return False
        if self._queue.qsize() >= max_pending:
            self.lose("fell too far behind")
            return False
        self._queue.put_nowait(event)
        return True

    def lose(self, why: str) -> None:
        if self._lost is None and not self._closed:
            self._lost = why
            self._queue.put_nowait(_LOST)

    def close(self) -> None:
        """Unread events are discarded, as leaving a Redis channel discards them."""
        self._closed = True
        self._queue.put_nowait(_LOST)  # wakes a reader waiting in __anext__

    def __aiter__(self) -> _MemorySubscription:
        return self

    async def __anext__(self) -> bytes:
        if self._closed:
            raise StopAsyncIteration
        item = await self._queue.get()
        if self._closed:
            raise StopAsyncIteration
        if item is _LOST:
            self._queue.put_nowait(item)  # stays lost
            raise SubscriptionLost(f"the event subscription of {self._user_id} {self._lost}")
        if not isinstance(item, bytes):  # not reached: the queue holds frames and the _LOST marker
            raise TypeError(f"unexpected item in the subscription queue: {type(item).__name__}")
        return item


class InMemoryTraderDirectory:
    def __init__(self, traders: Iterable[TraderSettings] = ()) -> None:
        self._traders = {t.user_id: t for t in traders}

    def put(self, settings: TraderSettings) -> None:
        self._traders[settings.user_id] = settings

    async def auto_snipers(self) -> list[TraderSettings]:
        return [t for t in self._traders.values() if t.auto_snipe]

    async def settings_for(self, user_id: str) -> TraderSettings:
        try:
            return self._traders[user_id]
        except KeyError:
            raise NotFound(f"unknown user: {user_id}") from None


class InMemoryAgentStatusBoard:
    """Heartbeats kept in the process: the worker and the API share it when they run together."""

    def __init__(self) -> None:
        self._statuses: dict[tuple[str, str], AgentStatus] = {}

    async def beat(self, status: AgentStatus) -> None:
        self._statuses[(status.worker_id, status.name)] = status

    async def statuses(self) -> list[AgentStatus]:
        return sorted(self._statuses.values(), key=lambda s: (s.name, s.worker_id))


class InMemoryLaunchRoster:
    """LaunchRoster for one process: the members of each launch, forgotten `ttl` after its last join."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._launches: dict[str, tuple[set[str], datetime]] = {}

    async def join(self, launch: str, member: str, ttl: timedelta) -> int:
        if ttl <= timedelta(0):
            raise ValueError(f"a launch roster needs a positive ttl, got {ttl}")
        now = self._clock.now()
        for key in [k for k, (_, until) in self._launches.items() if until <= now]:
            del self._launches[key]
        members = self._launches.get(launch, (set(), now))[0]
        members.add(member)
        self._launches[launch] = (members, now + ttl)
        return len(members)
