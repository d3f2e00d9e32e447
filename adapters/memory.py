"""In-process twins of the coordination adapters: scheduler, locks, cache, trader directory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from application.errors import NotFound
from application.ports import Clock, ScheduledJob, TraderSettings


class InMemoryScheduler:
    """Timed jobs held in the process; the runner asks for what is due."""

    def __init__(self) -> None:
        self._jobs: dict[tuple[str, str], ScheduledJob] = {}

    async def schedule(self, job: ScheduledJob) -> None:
        self._jobs[(job.kind, job.key)] = job

    async def cancel(self, kind: str, key: str) -> None:
        self._jobs.pop((kind, key), None)

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
        # key -> (expires at, the holder's token)
        self._held: dict[str, tuple[datetime, object]] = {}

    @asynccontextmanager
    async def lease(self, key: str, ttl: timedelta) -> AsyncIterator[bool]:
        now = self._clock.now()
        held = self._held.get(key)
        if held is not None and held[0] > now:
            yield False
            return
        token = object()
        self._held[key] = (now + ttl, token)
        try:
            yield True
        finally:
            # A holder whose lease lapsed and was taken over must not release its successor.
            current = self._held.get(key)
            if current is not None and current[1] is token:
                del self._held[key]


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
