"""What one run of a snipe carries from step to step: its hold on the snipe, its send plan, and how
its sends ended."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from application.errors import ExchangeError
from application.ports import Lease, OrderReport


@dataclass(slots=True)
class Run:
    """One executor's hold on one snipe, and what it measured for the launch."""

    lease: Lease
    renewed_at: datetime
    checked_at: datetime
    check: asyncio.Task[str | None] | None = None  # the check between resends (stop and lease) in flight
    lease_lost: bool = False
    renew_tried_at: datetime | None = None  # the last renewal that had no answer (lock service unreachable)
    # The last emergency stop read that succeeded: when, and what it said (None: no stop).
    halt_read_at: datetime | None = None
    halt_state: str | None = None
    # Set when the check before the launch could not reach the store and took `halt_state` from the
    # read this old: said in the history with the outcome.
    halt_read_age: timedelta | None = None
    # How far the exchange's clock is ahead of ours (`prepare`), how sure that is, and how long a
    # send takes to reach the exchange (None: not known; without spread and latency, no bracket).
    clock_offset: timedelta | None = None
    clock_spread: timedelta | None = None
    latency: timedelta | None = None
    traders: int = 1  # traders (this one included) sending into this launch from this IP (`LaunchRoster`)
    plan: Plan | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """When the sends go out (our clock): the first at `first`; after a "not open yet" the next
    leaves at once while fewer than `dense_sends` have gone and the refused one left before
    `dense_until`; after that, `retry_interval` apart, and at most `paced_sends` in any 10 s (None:
    no such bound, a trader alone on its launch). One send at a time, one client order id."""

    first: datetime
    dense_until: datetime
    dense_sends: int
    paced_sends: int | None


@dataclass(slots=True)
class Sent:
    """How the sends of one run ended."""

    held: OrderReport | None = None  # the exchange holds our order: as acknowledged, or as found
    attempts: int = 0
    not_open: int = 0  # refused as not open yet (10007)
    first_at: datetime | None = None  # when the first send started (our clock)
    last_at: datetime | None = None  # when the last send started (our clock)
    paced: deque[datetime] = field(default_factory=deque)  # starts of the sends after the bracket, last 10 s
    error: ExchangeError | None = None  # the last reply, when no order is held
    unclear_at: datetime | None = None  # when the last send with no clear answer (timeout, 5xx) ended
    halted: str | None = None  # an emergency stop seen between sends
    lease_lost: str | None = None  # why our lease on the snipe lapsed, was taken over, or may lapse
