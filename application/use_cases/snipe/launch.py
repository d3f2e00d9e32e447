"""Waiting for the launch: the lease renewed meanwhile, the emergency stop read for the last time
ahead of it, and no lock-service or database call in the last stretch before the first send."""

from __future__ import annotations

import logging
from datetime import timedelta

from application.ports import Clock
from application.timing import SnipeTiming
from application.use_cases.snipe.halt import HALT_READ_MAX_AGE, EmergencyStop, with_halt_note
from application.use_cases.snipe.lease import LeaseKeeper
from application.use_cases.snipe.outcome import SnipeOutcome, SnipeResult, cause_of
from application.use_cases.snipe.plan import SendPlanner
from application.use_cases.snipe.run import Run
from application.use_cases.snipe.send import RECHECK_EVERY
from application.use_cases.snipe.settle import Settlement
from domain.target import SnipeTarget

_log = logging.getLogger(__name__)

# The stop is read for the last time this long before the launch: read after the wake-up, or only 50 ms
# ahead, that read (a database round trip on a thread at normal priority) held the first send up on a
# loaded host. A stop pressed after it is seen by the checks between resends, and still cancels what is open.
_HALT_CHECK_LEAD = timedelta(milliseconds=300)
# The last renewal comes just before this stretch before `_RENEW_LEAD` before the launch (a sixth of the
# lease's ttl when that is shorter, so the lease still holds past the launch): none in it.
_QUIET_BEFORE_LAUNCH = timedelta(seconds=1)
_RENEW_LEAD = timedelta(milliseconds=50)


class LaunchWait:
    def __init__(
        self, clock: Clock, timing: SnipeTiming, lease: LeaseKeeper, halt: EmergencyStop, planner: SendPlanner,
        settlement: Settlement,
    ) -> None:
        self.clock, self.timing, self.lease, self.halt = clock, timing, lease, halt
        self.planner, self.settlement = planner, settlement

    async def wait(self, target: SnipeTarget, run: Run) -> SnipeOutcome | None:
        """Sleep until the first send (`SendPlanner.send_at`). A stop seen meanwhile fails the snipe
        unsent; a renewal refused stands the run down with nothing sent (None: go ahead and send).

        A snipe may be started hours ahead (`sniper snipe --at`): the lease is renewed every third of its
        ttl so that no one takes it over from this live executor. A renewal with no answer leaves the
        lease as it was: the send still goes out while it surely holds. The stop is also read a few
        seconds ahead: that read is the answer when the store cannot be reached at the last check."""
        send_at = self.planner.send_at(target, run)
        check_at = send_at - _HALT_CHECK_LEAD
        quiet = min(_QUIET_BEFORE_LAUNCH, self.timing.lease_ttl / 6)
        quiet_from = min(send_at - _RENEW_LEAD - quiet, check_at)
        refresh_at = check_at - HALT_READ_MAX_AGE + timedelta(seconds=1)
        refreshed = run.halt_read_at is not None and run.halt_read_at >= refresh_at
        while (wake := min(self.lease.next_renewal(run), quiet_from if refreshed else refresh_at)) < quiet_from:
            await self.clock.sleep_until(wake)
            if not refreshed and self.clock.now() >= refresh_at:
                refreshed = True
                try:
                    await self.halt.read(target, run)
                except Exception as exc:  # the store's own errors: the check at the launch asks again
                    _log.warning("snipe %s: reading the emergency stop failed (%s: %s)", target.target_id,
                                 type(exc).__name__, exc)
            if self.clock.now() >= self.lease.next_renewal(run) and not await self.lease.renew(target, run):
                return self._lost(target)
        await self.clock.sleep_until(quiet_from)
        if not await self.lease.renew(target, run):
            return self._lost(target)
        if self.planner.roster is not None:
            # Every trader of this launch has joined by now (they prepare `prepare_ahead` before it):
            # the bracket is shaped by the final count. Not later: no lock-service call in the last stretch.
            await self.planner.join_launch(target, run)
            send_at = self.planner.send_at(target, run)
            check_at = send_at - _HALT_CHECK_LEAD
        await self.clock.sleep_until(check_at)
        halted = await self.halt.at_launch(target, run)
        # The first check between sends is due at the first resend after the bracket's back-to-back
        # sends: no database read (a background task taking the loop for a millisecond or two) holds
        # up a resend in the bracket.
        dense_until = send_at if run.plan is None else max(run.plan.dense_until, send_at)
        run.checked_at = max(self.clock.now(), dense_until - RECHECK_EVERY)
        if not halted:
            await self.clock.sleep_until(send_at)
        if halted:
            target.fail(with_halt_note(halted, run), cause_of(target, self.clock))
            await self.settlement.record(target)
            return SnipeOutcome(target.target_id, SnipeResult.REFUSED, halted)
        return None

    def _lost(self, target: SnipeTarget) -> SnipeOutcome:
        return SnipeOutcome(
            target.target_id, SnipeResult.SKIPPED,
            "lost the lease on this snipe while waiting for the launch; nothing sent, left executing for its holder",
        )
