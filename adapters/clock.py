"""Clocks: the system clock, and a controllable one for the demo and tests."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

T = TypeVar("T")


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, delay: timedelta) -> None:
        await asyncio.sleep(max(delay.total_seconds(), 0.0))

    async def sleep_until(self, moment: datetime) -> None:
        await self.sleep(moment - self.now())


class ManualClock:
    """Virtual time for the demo and tests.

    Alone, a sleep moves the clock forward at once. Inside `run_together`, sleepers wait
    for each other: time only moves when every task is parked on the clock, and then
    straight to the earliest wake-up, so concurrent snipes see the same instants they
    would in real time.
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware start time")
        self._now = start.astimezone(UTC)
        self._waiters: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._coordinated = 0

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        if delta < timedelta(0):
            raise ValueError("time does not go backwards")
        self.set(self._now + delta)

    def set(self, moment: datetime) -> None:
        if moment < self._now:
            raise ValueError(f"time does not go backwards: {moment} < {self._now}")
        self._now = moment
        self._wake_due()

    async def sleep(self, delay: timedelta) -> None:
        await self.sleep_until(self._now + max(delay, timedelta(0)))

    async def sleep_until(self, moment: datetime) -> None:
        if moment <= self._now:
            await asyncio.sleep(0)
            return
        if not self._coordinated:
            self._now = moment
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (moment, next(self._seq), future))
        await future

    def _wake_due(self) -> None:
        while self._waiters and self._waiters[0][0] <= self._now:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)

    async def run_together(self, work: Iterable[Awaitable[T]]) -> list[T]:
        """Run coroutines concurrently in virtual time; results in the given order."""
        self._coordinated += 1
        tasks = [asyncio.ensure_future(w) for w in work]
        try:
            while True:
                live = [t for t in tasks if not t.done()]
                if not live:
                    break
                parked = sum(1 for _, _, f in self._waiters if not f.done())
                if parked >= len(live) and self._waiters:
                    # Everyone is asleep on the clock: jump to the earliest wake-up.
                    self._now = max(self._now, self._waiters[0][0])
                    self._wake_due()
                # Let the woken (or still busy, e.g. in database I/O) tasks run.
                await asyncio.sleep(0)
            return [t.result() for t in tasks]
        finally:
            self._coordinated -= 1
            for t in tasks:
                if not t.done():
                    t.cancel()
