"""SystemClock's launch priority: SCHED_FIFO from the start of the last spin before a moment until
`hot_hold` after it, then the process's own policy again; without the right to it, one warning and
the normal priority. The scheduler calls are recorded, never made: the test process stays as it is."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from datetime import UTC, datetime, timedelta

import pytest

from adapters.clock import SystemClock

MS = timedelta(milliseconds=1)


class _Scheduler:
    def __init__(self, refuse: bool = False) -> None:
        self.policy, self.priority, self.refuse = 0, 0, refuse
        self.calls: list[tuple[int, int]] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(os, "sched_getscheduler", lambda pid: self.policy)
        monkeypatch.setattr(os, "sched_getparam", lambda pid: os.sched_param(self.priority))
        monkeypatch.setattr(os, "sched_setscheduler", self.set)

    def set(self, pid: int, policy: int, param: os.sched_param) -> None:
        if self.refuse:
            raise PermissionError(1, "Operation not permitted")
        self.calls.append((policy, param.sched_priority))
        self.policy, self.priority = policy, param.sched_priority


async def test_the_launch_runs_at_the_launch_priority_and_the_process_returns_to_its_own_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scheduler = _Scheduler()
    scheduler.install(monkeypatch)
    collector: list[str] = []
    monkeypatch.setattr(gc, "isenabled", lambda: True)
    monkeypatch.setattr(gc, "disable", lambda: collector.append("off"))
    monkeypatch.setattr(gc, "enable", lambda: collector.append("on"))
    # A spin longer than the waits: every wait spins (a timer could overshoot a short one on a loaded host).
    clock = SystemClock(spin=timedelta(seconds=1), launch_priority=7, hot_hold=20 * MS)
    await clock.sleep_until(datetime.now(UTC) + 10 * MS)
    assert scheduler.calls == [(os.SCHED_FIFO, 7)]
    assert collector == ["off"]  # no collection pause in the spin, nor in the sends at the open
    await clock.sleep_until(datetime.now(UTC) + 3 * MS)  # a second moment inside the hold: no new switch
    assert scheduler.calls == [(os.SCHED_FIFO, 7)]
    for _ in range(200):  # the hold ends 20 ms after the last moment (later on a loaded host)
        if len(scheduler.calls) > 1:
            break
        await asyncio.sleep(0.01)
    assert scheduler.calls == [(os.SCHED_FIFO, 7), (0, 0)]  # back to SCHED_OTHER after the hold
    for _ in range(200):
        if collector.count("on") == collector.count("off"):
            break
        await asyncio.sleep(0.01)
    assert collector == ["off", "off", "on", "on"]  # the collector back on once each hold has passed


async def test_a_moment_far_ahead_is_slept_towards_at_the_normal_priority_and_its_last_timer_at_the_launch_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The wake-up from the last timer (at the spin) is the one a loaded host may delay past the
    moment at the normal priority: the launch priority is taken before that timer starts."""
    scheduler = _Scheduler()
    scheduler.install(monkeypatch)
    timers: list[tuple[float, int]] = []  # (seconds, scheduler switches made when it started)
    real_sleep = asyncio.sleep

    async def recording_sleep(seconds: float) -> None:
        if seconds > 0:
            timers.append((seconds, len(scheduler.calls)))
        await real_sleep(seconds)

    monkeypatch.setattr(asyncio, "sleep", recording_sleep)
    clock = SystemClock(spin=5 * MS, launch_priority=3, hot_hold=MS)
    await clock.sleep_until(datetime.now(UTC) + 400 * MS)
    monkeypatch.setattr(asyncio, "sleep", real_sleep)
    assert scheduler.calls[0] == (os.SCHED_FIFO, 3)
    assert timers[0][1] == 0  # the long wait at the normal priority
    last_seconds, switched = timers[-1]
    assert switched == 1 and last_seconds <= 0.105  # the last timer, at most 100 ms (and the spin) long
    for _ in range(200):  # back to its own policy after the hold (later on a loaded host)
        if len(scheduler.calls) > 1:
            break
        await asyncio.sleep(0.01)
    assert scheduler.calls == [(os.SCHED_FIFO, 3), (0, 0)]


async def test_without_the_right_to_it_one_warning_and_the_normal_priority(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    scheduler = _Scheduler(refuse=True)
    scheduler.install(monkeypatch)
    clock = SystemClock(spin=timedelta(seconds=1), launch_priority=1)
    with caplog.at_level(logging.WARNING, logger="adapters.clock"):
        for _ in range(2):
            await clock.sleep_until(datetime.now(UTC) + 6 * MS)
    assert [r.getMessage() for r in caplog.records if "launch priority" in r.getMessage()][0].startswith(
        "launch priority 1 (SNIPER_LAUNCH_PRIORITY) not taken")
    assert len([r for r in caplog.records if "launch priority" in r.getMessage()]) == 1
    assert scheduler.calls == []


async def test_off_by_default_and_bounded() -> None:
    SystemClock()  # 0: never touches the scheduler
    with pytest.raises(ValueError):
        SystemClock(launch_priority=100)
