"""Clocks: the system clock, and a controllable one for the demo and tests."""

from __future__ import annotations

import asyncio
import gc
import heapq
import itertools
import logging
import os
import time
from collections.abc import Awaitable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

T = TypeVar("T")


_log = logging.getLogger(__name__)
# SystemClock takes its launch priority this long before the spin (see sleep_until).
_HEAT_AHEAD_NS = 100_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


class SystemClock:
    """Wall-clock time.

    `sleep_until` wakes at the moment, not some time after it: an asyncio timer alone wakes
    0.1-3 ms late (epoll's millisecond timeout, rounded up, plus scheduling), which at a
    launch is the whole race. So it sleeps on a timer until `spin` before the moment, then
    yields to the event loop (asyncio.sleep(0): other tasks keep running) and re-reads the
    wall clock until the moment has come: it wakes within tens of microseconds after it,
    never before. The spin costs at most `spin` of CPU per call. `sleep` is a plain timer.

    On a loaded host a spinning process is preempted like any other (measured with two CPU-bound
    processes per core: woken 0.6-12 ms late). With `launch_priority` (1-99), the process (its
    event loop's thread) runs under SCHED_FIFO at that priority from 100 ms before a spin (it
    sleeps on its last timer meanwhile, and wakes from it at once) until `hot_hold` after its
    moment (the sends at the open), then returns to its own policy: measured
    the same way, woken 2-3 µs late. It needs the right to (root or CAP_SYS_NICE; in a container,
    `--cap-add SYS_NICE`); without it a warning is logged once and the clock spins as before. 0:
    never. Whatever the priority, the cyclic garbage collector is paused from 100 ms before a
    spin until `hot_hold` after its moment.
    """

    def __init__(
        self, spin: timedelta = timedelta(milliseconds=5), *, launch_priority: int = 0,
        hot_hold: timedelta = timedelta(milliseconds=30),
    ) -> None:
        if not 0 <= launch_priority <= 99:
            raise ValueError(f"a launch priority is 0 (off) to 99, got {launch_priority}")
        self._spin_ns = max(0, spin // _US) * 1000
        self._priority = launch_priority
        self._hold_ns = max(0, hot_hold // _US) * 1000
        self._hot_until_ns = 0  # the process runs at launch priority until then
        self._calm: asyncio.TimerHandle | None = None
        self._policy: tuple[int, int] | None = None  # the policy and priority to return to

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, delay: timedelta) -> None:
        await asyncio.sleep(max(delay.total_seconds(), 0.0))

    async def sleep_until(self, moment: datetime) -> None:
        target_ns = (moment - _EPOCH) // _US * 1000
        spin_ns = self._spin_ns
        hot = paused = reached = False
        try:
            while True:
                remaining = target_ns - time.time_ns()
                if remaining <= 0:
                    reached = True
                    return
                if not hot and remaining <= spin_ns + _HEAT_AHEAD_NS:
                    # From before the last timer: a wake-up from it at normal priority can come late
                    # on a loaded host, too late for the spin. Asleep, the priority costs nobody anything.
                    hot = True
                    if self._priority:
                        self._heat(target_ns + self._hold_ns)
                    # No cyclic garbage collection until the moment (a full one pauses a process this
                    # size for milliseconds, tens on a loaded host).
                    paused = gc.isenabled()
                    gc.disable()
                if remaining > spin_ns:
                    # A timer for all but the last `spin`, and before the launch priority is taken,
                    # for all but `_HEAT_AHEAD_NS` more: that timer's wake-up at the normal priority
                    # may come late on a loaded host (seen: 40 ms, past the moment), the last one's
                    # at the launch priority does not. Re-checked after, in case the wall clock was
                    # stepped meanwhile.
                    await asyncio.sleep((remaining - spin_ns - (0 if hot else _HEAT_AHEAD_NS)) / 1e9)
                else:
                    await asyncio.sleep(0)
        finally:
            if paused:
                # Still paused through the sends at the open (`hot_hold`): a collection that starts
                # at the moment would hold the first resend back by milliseconds (seen: 2 ms).
                hold = (target_ns + self._hold_ns - time.time_ns()) / 1e9
                if reached and hold > 0:
                    asyncio.get_running_loop().call_later(hold, gc.enable)
                else:
                    gc.enable()

    def _heat(self, until_ns: int) -> None:
        """Run at the launch priority until `until_ns` (wall clock), or longer if already asked."""
        if until_ns <= self._hot_until_ns:
            return
        if self._policy is None:
            try:
                policy = os.sched_getscheduler(0), os.sched_getparam(0).sched_priority
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(self._priority))
            except (OSError, AttributeError) as exc:  # no right to it (EPERM), or not Linux
                _log.warning("launch priority %d (SNIPER_LAUNCH_PRIORITY) not taken: %s; the launch runs at the "
                             "normal priority (root or CAP_SYS_NICE needed; 0 turns this off)", self._priority, exc)
                self._priority = 0
            else:
                self._policy = policy
        self._hot_until_ns = until_ns
        if self._calm is not None:
            self._calm.cancel()
        loop = asyncio.get_running_loop()
        self._calm = loop.call_later(max(0, until_ns - time.time_ns()) / 1e9, self._cool)

    def _cool(self) -> None:
        left = self._hot_until_ns - time.time_ns()
        if left > 0:  # woken early (a timer rounds to the millisecond)
            self._calm = asyncio.get_running_loop().call_later(left / 1e9, self._cool)
            return
        self._calm = None
        policy, self._policy = self._policy, None
        if policy is not None:
            try:
                os.sched_setscheduler(0, policy[0], os.sched_param(policy[1]))
            except OSError as exc:  # pragma: no cover - returning to one's own policy is always allowed
                _log.warning("could not return from the launch priority: %s", exc)


class AcceleratedClock:
    """Replay time: starts at `start` and runs `speed` times faster than the wall clock
    (speed 1: real time from another starting point). For the worker replaying a scenario:
    a morning of listings plays in minutes, with the same code paths as live time."""

    def __init__(self, start: datetime, speed: float = 1.0) -> None:
        if not speed > 0:
            raise ValueError(f"a replay speed must be positive, got {speed}")
        self._start = start
        self._speed = speed
        self._origin_ns = time.monotonic_ns()

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> datetime:
        elapsed_us = (time.monotonic_ns() - self._origin_ns) * self._speed / 1000
        return self._start + timedelta(microseconds=elapsed_us)

    async def sleep(self, delay: timedelta) -> None:
        await asyncio.sleep(max(delay.total_seconds() / self._speed, 0.0))

    async def sleep_until(self, moment: datetime) -> None:
        # Re-read after each sleep: the scaled clock may still be short of the moment.
        while (remaining := moment - self.now()) > timedelta(0):  # noqa: ASYNC110
            await asyncio.sleep(remaining.total_seconds() / self._speed)


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
        """Run coroutines concurrently in virtual time; results in the given order.

        They take turns, so a replay is the same on every run: each starts alone, and at each
        wake-up only one sleeper is woken (the earliest; of those due at the same instant, the
        one that went to sleep first); the next is woken only when every task is parked on the
        clock again or done. A task busy with real I/O (a database round trip) holds the turn,
        however long it takes: its work and what it records never interleave differently on a
        slow or loaded machine."""
        self._coordinated += 1
        tasks: list[asyncio.Future[T]] = []
        try:
            for w in work:
                tasks.append(asyncio.ensure_future(w))
                await self._until_parked(tasks)
            while any(not t.done() for t in tasks):
                if not self._waiters:
                    await asyncio.sleep(0)  # waiting on something else than the clock
                    continue
                moment, _, future = heapq.heappop(self._waiters)
                if future.done():  # its sleeper was cancelled
                    continue
                self._now = max(self._now, moment)
                future.set_result(None)
                await self._until_parked(tasks)
            return [t.result() for t in tasks]
        finally:
            self._coordinated -= 1
            for t in tasks:
                if not t.done():
                    t.cancel()

    async def _until_parked(self, tasks: list[asyncio.Future[T]]) -> None:
        """Let the running task (and what it woke) run until every task sleeps on the clock or is done."""
        while True:
            await asyncio.sleep(0)
            live = sum(1 for t in tasks if not t.done())
            if sum(1 for _, _, f in self._waiters if not f.done()) >= live:
                return
