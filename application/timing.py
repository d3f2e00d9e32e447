"""Timing of the snipe flow. Defaults follow DESIGN.md; the entrypoint may override them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

# What a lease must hold beyond a send's time in flight (see `lease_floor`): renewals come every
# third of the ttl, and the checks that renew between resends run at most every 200 ms; the rest
# is room for the lock service's clock and a pause of the process between the check and the send.
_LEASE_ROOM = timedelta(milliseconds=500)


@dataclass(frozen=True, slots=True)
class SnipeTiming:
    # A listing launching within this window is prepared for; beyond it, only watched.
    lead_window: timedelta = timedelta(hours=3, minutes=30)
    # The executor starts this long before launch: clock sync, warm connection, checks.
    prepare_ahead: timedelta = timedelta(seconds=2)
    # After launch, "not yet open" is retried until this much time has passed.
    snipe_window: timedelta = timedelta(seconds=30)
    # Pause between "not yet open" retries; MEXC allows 500 calls per 10 s per endpoint.
    retry_interval: timedelta = timedelta(milliseconds=20)
    # The bracket around the open (SendPlanner.plan): at most this many sends back to back, one
    # at a time, from just before the earliest instant the open can be (as the clock sync allows)
    # to just after the latest; then `retry_interval` between sends.
    bracket_sends: int = 40
    # Order sends per 10 s that all the traders sniping one launch from this IP may spend (MEXC: 500
    # per endpoint per IP; the rest is left for exits and cancels). Half goes to the brackets, half
    # to the sends after them: with N traders each bracket holds at most half / N sends, and the
    # sends after it are N * 10 s / half apart (never closer than `retry_interval`).
    launch_order_budget: int = 400
    # A target still not ready this long after its launch time expires.
    expiry_grace: timedelta = timedelta(minutes=5)
    # How long one executor holds a snipe unrenewed: renewed every third of it while the executor
    # lives, so a killed executor's snipe is taken up again at most this long after it died.
    lease_ttl: timedelta = timedelta(seconds=15)
    # How long after a send starts the exchange may still take the order in: MEXC refuses a signed
    # request whose timestamp is more than recvWindow (5 s by default) behind its clock, and takes
    # a timestamp up to 1 s ahead of it. A send starts only while the lease holds this long.
    send_in_flight: timedelta = timedelta(seconds=6)

    def __post_init__(self) -> None:
        if self.bracket_sends < 1 or self.launch_order_budget < 2:
            raise ValueError("a snipe needs at least one bracket send and a launch order budget of at least 2")
        if self.lease_ttl < self.lease_floor:
            raise ValueError(f"a snipe lease of {self.lease_ttl.total_seconds():g} s is too short: a send "
                             f"({self.send_in_flight.total_seconds():g} s in flight) needs at least "
                             f"{self.lease_floor.total_seconds():g} s")

    @property
    def lease_floor(self) -> timedelta:
        """The shortest lease that still lets a live executor send: renewed every third of its
        ttl, it must hold a send's time in flight (and some room) two thirds into it."""
        return (self.send_in_flight + _LEASE_ROOM) * 3 / 2
