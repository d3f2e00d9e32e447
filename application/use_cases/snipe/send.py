"""The send loop: one client order id, sent until the exchange holds the order, refuses it, or the
deadline passes. Between resends a background check (lease renewal, emergency stop) may stop it; no
lock-service or database call ever stands between two sends."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from application.errors import (
    AmbiguousOutcome,
    ClockSkew,
    NotYetOpen,
    OrderAlreadyExists,
    OrderRefused,
    RateLimited,
)
from application.ports import Clock, ExchangeTrading
from application.telemetry import SNIPE_LATENCY_MS, Telemetry
from application.timing import SnipeTiming
from application.use_cases.snipe.halt import EmergencyStop
from application.use_cases.snipe.lease import LeaseKeeper
from application.use_cases.snipe.lookup import VISIBILITY_GRACE, OrderLookup
from application.use_cases.snipe.outcome import mode, unscheduled
from application.use_cases.snipe.plan import SendPlanner
from application.use_cases.snipe.run import Run, Sent
from domain.target import SnipeTarget
from domain.values import ClientOrderId

_log = logging.getLogger(__name__)

# After a send with no clear answer, the order is looked for through the whole visibility grace (never
# past the deadline) before a resend: MEXC refusing a reused client order id is undocumented, and with
# 2 s an audit saw a landed order "not found" for 3 s bought twice.
_RESEND_GRACE = VISIBILITY_GRACE
# While sends are retried, the stop is read again (and the lease renewed when due) at most this often,
# in a background task whose answer is looked at before a later resend: off the send path.
RECHECK_EVERY = timedelta(milliseconds=200)


class Sends:
    def __init__(
        self, clock: Clock, timing: SnipeTiming, telemetry: Telemetry, planner: SendPlanner, lease: LeaseKeeper,
        halt: EmergencyStop, lookup: OrderLookup,
    ) -> None:
        self.clock, self.timing, self.telemetry = clock, timing, telemetry
        self.planner, self.lease, self.halt, self.lookup = planner, lease, halt, lookup

    async def until_deadline(
        self, target: SnipeTarget, coid: ClientOrderId, deadline: datetime, exchange: ExchangeTrading, run: Run
    ) -> Sent:
        """Send until the exchange holds the order, refuses it, or the deadline passes; what the sends
        left is for `Settlement.settle` to record."""
        if target.symbol is None:
            raise unscheduled(target)
        sent = Sent()
        plan = run.plan or self.planner.plan(target, run)
        try:
            while self.clock.now() < deadline:
                if sent.attempts and self._stop_between_sends(target, run, sent):
                    return sent
                if not self.lease.holds(run):  # the fence: checked between resends above, here before the first
                    sent.lease_lost = self.lease.lapsing(target, run)
                    return sent
                sent.attempts += 1
                sent.last_at = self.clock.now()
                if sent.attempts == 1:
                    sent.first_at = sent.last_at
                try:
                    report = await (
                        exchange.place_market_buy(target.symbol, target.quote_amount, coid)
                        if target.max_entry_price is None
                        # The cap: an IMMEDIATE_OR_CANCEL limit buy at it. What it leaves unfilled is
                        # cancelled by the exchange and settled as it ended: never sent again.
                        else exchange.place_capped_buy(target.symbol, target.quote_amount, target.max_entry_price, coid)
                    )
                except NotYetOpen as exc:
                    sent.error = exc
                    sent.not_open += 1
                    if sent.attempts < plan.dense_sends and sent.last_at < plan.dense_until:
                        # Inside the bracket: the next send leaves at once. Judged by when the refused
                        # send left: a reply slowed by a loaded host says nothing of the open since.
                        continue
                    await self._sleep_renewing(target, run, self.planner.pause(plan, sent))
                    continue
                except RateLimited as exc:
                    sent.error = exc
                    await self.clock.sleep(max(exc.retry_after, self.timing.retry_interval))
                    continue
                except ClockSkew as exc:
                    sent.error = exc
                    await self.planner.prepare(target, exchange)
                    continue
                except OrderAlreadyExists as exc:
                    # Our order exists (an earlier send of ours, or another worker's): never send
                    # again, wait for it to become visible.
                    sent.error = exc
                    found = await self.lookup.await_visible(
                        target, coid, max(deadline, self.clock.now()) + VISIBILITY_GRACE, exchange
                    )
                    if found is None:
                        raise AmbiguousOutcome(f"order {coid} exists but never became visible; not resending") from exc
                    report = found
                except AmbiguousOutcome as exc:
                    # No clear answer: the order may have landed. Looked for before sending again.
                    sent.error = exc
                    sent.unclear_at = self.clock.now()
                    found = await self.lookup.await_visible(
                        target, coid, min(self.clock.now() + _RESEND_GRACE, deadline), exchange, run
                    )
                    if found is None:
                        if run.lease_lost:
                            sent.lease_lost = self.lease.lapsing(target, run)
                            return sent
                        continue
                    report = found
                except OrderRefused as exc:
                    sent.error = exc
                    return sent
                # The exchange holds our order. It is followed to its fill outside this loop: an
                # error while querying it must never lead to a resend.
                self.accepted(target)
                sent.held, sent.error = report, None
                return sent
            return sent
        finally:
            # No await here: a check that finished since the last resend amends `sent` (the object returned).
            self._end_checks(target, run, sent)

    async def _sleep_renewing(self, target: SnipeTarget, run: Run, pause: timedelta) -> None:
        """Sleep `pause`, renewing the lease when due so that the sends may go on after a long one (a
        trader holding its share of the budget). A renewal refused sets `run.lease_lost`."""
        until = self.clock.now() + pause
        while (left := until - self.clock.now()) > timedelta(0):
            await self.clock.sleep(min(left, self.lease.renew_every / 2))
            if left > self.lease.renew_every / 2 and not await self.lease.renew_if_due(target, run):
                return

    def _stop_between_sends(self, target: SnipeTarget, run: Run, sent: Sent) -> bool:
        """Before a resend: whether the background check found a reason to stop (recorded in `sent`),
        starting the next check when due. Never waits for a check. A check that failed is no answer,
        but no resend starts once the lease may lapse: another executor could then send beside us."""
        if run.lease_lost:  # a renewal refused (while sleeping between sends, or by the check)
            sent.lease_lost = "lost the lease on this snipe"
            return True
        task = run.check
        if task is not None and task.done():
            run.check = None
            halted = self._answer(target, task)
            if run.lease_lost:
                sent.lease_lost = "lost the lease on this snipe"
                return True
            if halted is not None:
                sent.halted = halted
                return True
        if not self.lease.holds(run):
            sent.lease_lost = self.lease.lapsing(target, run)
            return True
        if run.check is None and self.clock.now() - run.checked_at >= RECHECK_EVERY:
            run.checked_at = self.clock.now()
            run.check = asyncio.ensure_future(self._check(target, run))
        return False

    async def _check(self, target: SnipeTarget, run: Run) -> str | None:
        """The background check between resends: renew the lease when due, read the stop. A failure is
        logged and is no answer: the sends go on, as long as `LeaseKeeper.holds` allows."""
        if not await self.lease.renew_if_due(target, run):
            return None
        try:
            return await self.halt.read(target, run)
        except Exception as exc:  # the store's own errors (e.g. the database unreachable)
            _log.warning(
                "snipe %s: reading the emergency stop failed (%s: %s); read again at the next check",
                target.target_id, type(exc).__name__, exc,
            )
            return None

    def _answer(self, target: SnipeTarget, task: asyncio.Task[str | None]) -> str | None:
        """What a finished check found: the stop's reason, or None (no stop, or no answer)."""
        if task.cancelled():
            return None
        exc = task.exception()
        if exc is not None:
            _log.warning("snipe %s: the check between resends failed (%s: %s)",
                         target.target_id, type(exc).__name__, exc)
            return None
        return task.result()

    def _end_checks(self, target: SnipeTarget, run: Run, sent: Sent) -> None:
        """The sends are over: a check in flight is cancelled; one that finished since the last resend
        is never dropped. With no order held and no refusal, its stop or lost lease ends the run as it
        would between resends; with an order held, the fill is ours to record whatever it found."""
        task, run.check = run.check, None
        halted = None
        if task is not None:
            if task.done():
                halted = self._answer(target, task)
            else:
                task.cancel()
        lease_lost = run.lease_lost and sent.lease_lost is None
        if lease_lost or halted is not None:
            found = "a lost lease" if lease_lost else f"an emergency stop ({halted})"
            _log.warning("snipe %s: the last check between sends found %s", target.target_id, found)
        if sent.held is not None or sent.halted is not None or sent.lease_lost is not None:
            return
        if isinstance(sent.error, OrderRefused):
            return
        if lease_lost:
            sent.lease_lost = "lost the lease on this snipe"
        elif not self.lease.holds(run):
            sent.lease_lost = self.lease.lapsing(target, run)
        elif halted is not None:
            sent.halted = halted

    def accepted(self, target: SnipeTarget) -> None:
        """The exchange holds our order: how long after the launch instant that became known."""
        if target.execute_at is None:
            raise unscheduled(target)
        waited = max(self.clock.now() - target.execute_at, timedelta(0))
        self.telemetry.observe(SNIPE_LATENCY_MS, waited / timedelta(milliseconds=1), mode=mode(target))
