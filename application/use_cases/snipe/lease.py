"""The snipe's lease: renewed while the run waits and sends, and the fence every send must pass.

A send starts only while the lease surely holds for the send's whole time in flight, so whatever a
run sent was in the exchange's hands before another executor could take the snipe over."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from application.ports import Clock, LockService
from application.timing import SnipeTiming
from application.use_cases.snipe.run import Run
from domain.target import SnipeTarget

_log = logging.getLogger(__name__)

# Beyond a send's time in flight (`SnipeTiming.send_in_flight`): room for the lock service's clock
# and a pause between the check and the send.
_LEASE_MARGIN = timedelta(milliseconds=250)
# A renewal that failed (the lock service unreachable) is tried again this much later.
_RENEW_RETRY = timedelta(seconds=1)


class LeaseKeeper:
    def __init__(self, locks: LockService, clock: Clock, timing: SnipeTiming) -> None:
        self.locks, self.clock, self.timing = locks, clock, timing

    @property
    def renew_every(self) -> timedelta:
        return self.timing.lease_ttl / 3

    def next_renewal(self, run: Run) -> datetime:
        due = run.renewed_at + self.renew_every
        return due if run.renew_tried_at is None else max(due, run.renew_tried_at + _RENEW_RETRY)

    async def renew(self, target: SnipeTarget, run: Run) -> bool:
        """False only when the lock service refused (the lease lapsed or has another holder). A renewal
        with no answer leaves the lease as it was: `holds` bounds what may still be sent on it."""
        asked_at = self.clock.now()
        try:
            renewed = await self.locks.renew(run.lease, self.timing.lease_ttl)
        except Exception as exc:  # the lock service's own errors (e.g. Redis unreachable)
            run.renew_tried_at = asked_at
            _log.warning(
                "snipe %s: renewing its lease failed (%s: %s); it holds until %s by our clock",
                target.target_id, type(exc).__name__, exc, (run.renewed_at + self.timing.lease_ttl).isoformat(),
            )
            return True
        if not renewed:
            run.lease_lost = True
            return False
        run.renewed_at, run.renew_tried_at = asked_at, None
        return True

    async def renew_if_due(self, target: SnipeTarget, run: Run) -> bool:
        """Renew once a third of the ttl has passed; False when the renewal was refused."""
        return self.clock.now() < self.next_renewal(run) or await self.renew(target, run)

    def holds(self, run: Run) -> bool:
        """Whether a send may start now: by our clock, from when the last renewal that succeeded was
        asked for. Renewed every third of the ttl, it only runs this low when renewals fail or hang."""
        left = run.renewed_at + self.timing.lease_ttl - self.clock.now()
        return left > self.timing.send_in_flight + _LEASE_MARGIN

    def lapsing(self, target: SnipeTarget, run: Run) -> str:
        why = (f"the lease on this snipe may lapse before a send could land (last renewed at "
               f"{run.renewed_at.isoformat()}, renewals failed); stopped sending")
        _log.warning("snipe %s: %s", target.target_id, why)
        return why

    def earlier_until(self, target: SnipeTarget, run: Run) -> datetime:
        """Until when (our clock) the run that submitted this snipe may believe in its lease.

        With the fence counter kept since that submission (our epoch, a lower token), its lease lapsed
        before we took ours. Otherwise (Redis lost its data) that run may not learn that its renewals
        are refused, and believe in its lease up to one ttl after the counter restarted: every holder
        since waits that out (from our own take when we started the counter or its start is unknown)."""
        lease, ttl = run.lease, self.timing.lease_ttl
        if (lease.epoch and target.lease_epoch == lease.epoch
                and target.lease_token is not None and target.lease_token < lease.token):
            return run.renewed_at
        if lease.first or lease.epoch_started_at is None:
            return run.renewed_at + ttl
        return max(run.renewed_at, lease.epoch_started_at + ttl)
