"""ExecuteSnipe: take the snipe's lease, record the order as submitted, wait for the launch, send,
and settle; a target found executing has its order looked for before anything is sent again."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

from application import repository
from application.errors import AccountUnavailable, ConcurrencyConflict, NotFound
from application.ports import (
    Clock,
    EventStore,
    ExchangeAccounts,
    ExchangeTrading,
    LaunchRoster,
    LockService,
    MarketData,
    TraderDirectory,
)
from application.pre_trade import risk_refusals, trade_proposal
from application.telemetry import NO_TELEMETRY, Telemetry
from application.timing import SnipeTiming
from application.trade_book import TradeBook
from application.use_cases.snipe.halt import EmergencyStop
from application.use_cases.snipe.launch import LaunchWait
from application.use_cases.snipe.lease import LeaseKeeper
from application.use_cases.snipe.lookup import VISIBILITY_GRACE, OrderLookup
from application.use_cases.snipe.outcome import SnipeOutcome, SnipeResult, cause_of, mode, unscheduled
from application.use_cases.snipe.plan import MAX_CLOCK_LEAD, SendPlanner
from application.use_cases.snipe.run import Run, Sent
from application.use_cases.snipe.send import Sends
from application.use_cases.snipe.settle import Settlement
from domain.target import SnipeTarget, TargetStatus, target_stream
from domain.values import ClientOrderId

_log = logging.getLogger(__name__)

# An executor finding the snipe's lease held tries again this often, for one ttl (and this much
# more): a living holder renews its lease, a dead one's lapses within a ttl.
_LEASE_WAIT_EVERY = timedelta(milliseconds=500)


class ExecuteSnipe:
    """Buy one target at launch: at most one buy per target, whatever happens in between.

    The client order id is derived from the target and the order recorded as submitted before it is
    sent. Whatever may have reached the exchange (a reply with no clear answer, an earlier run of a
    target found executing) is looked for by that id through the visibility grace before anything is
    sent again or a failure recorded. The lease is renewed throughout, so that no other executor takes
    the snipe over from a live one, and no send starts once it may lapse.
    """

    def __init__(
        self,
        store: EventStore,
        exchange: ExchangeTrading,
        market: MarketData,
        traders: TraderDirectory,
        locks: LockService,
        clock: Clock,
        book: TradeBook,
        timing: SnipeTiming,
        telemetry: Telemetry = NO_TELEMETRY,
        accounts: ExchangeAccounts | None = None,
        roster: LaunchRoster | None = None,
    ) -> None:
        self.store, self.exchange, self.market, self.traders = store, exchange, market, traders
        self.locks, self.clock, self.book, self.timing = locks, clock, book, timing
        self.telemetry = telemetry
        # Where each target's order goes (paper or live). Without it, every order goes to `exchange`.
        self.accounts = accounts
        # Who else sends into the same launch from this IP (they share its rate budget); None: alone.
        self.roster = roster
        self._lease = LeaseKeeper(locks, clock, timing)
        self._halt = EmergencyStop(store, book, clock)
        self._planner = SendPlanner(clock, timing, telemetry, roster)
        self._lookup = OrderLookup(clock, timing, self._planner, self._lease)
        self._sends = Sends(clock, timing, telemetry, self._planner, self._lease, self._halt, self._lookup)
        self._settlement = Settlement(store, book, market, clock, timing, telemetry, self._lookup, self._sends)
        self._launch = LaunchWait(clock, timing, self._lease, self._halt, self._planner, self._settlement)

    async def __call__(self, target_id: str) -> SnipeOutcome:
        with self.telemetry.span("use_case.execute_snipe", target_id=target_id):
            # A lease held by another executor is tried again for one ttl: a killed holder's lapses
            # within it, and its snipe may still go out inside its window.
            give_up = self.clock.now() + self.timing.lease_ttl + _LEASE_WAIT_EVERY
            while True:
                asked_at = self.clock.now()
                async with self.locks.lease(f"snipe:{target_id}", self.timing.lease_ttl) as held:
                    if held:
                        run = Run(held, renewed_at=asked_at, checked_at=asked_at)
                        outcome = await self._execute(target_id, run)
                        break
                if self.clock.now() >= give_up or not await self._pending(target_id):
                    outcome = SnipeOutcome(target_id, SnipeResult.SKIPPED, "another executor holds this snipe")
                    break
                await self.clock.sleep(_LEASE_WAIT_EVERY)
            self.telemetry.annotate(result=outcome.result.value, attempts=outcome.attempts)
            return outcome

    async def _pending(self, target_id: str) -> bool:
        target = await repository.get(self.store, SnipeTarget, target_stream(target_id))
        return target.status in (TargetStatus.SCHEDULED, TargetStatus.EXECUTING)

    async def _execute(self, target_id: str, run: Run) -> SnipeOutcome:
        target = await repository.get(self.store, SnipeTarget, target_stream(target_id))
        if target.symbol is not None:
            self.telemetry.annotate(symbol=target.symbol.code, user_id=target.user_id, mode=mode(target))
        if target.status not in (TargetStatus.SCHEDULED, TargetStatus.EXECUTING):
            return SnipeOutcome(target_id, SnipeResult.SKIPPED, f"target is {target.status.value}")
        if (target.symbol is None or target.deadline_at is None or target.execute_at is None
                or target.client_order_id is None):
            raise unscheduled(target)
        coid = ClientOrderId(target.client_order_id)

        if target.status is TargetStatus.SCHEDULED:
            read_at = self.clock.now()
            refusal = await self._pre_trade_refusal(target)
            if refusal is not None:
                return refusal
            run.halt_read_at, run.halt_state = read_at, None
            if self.clock.now() >= target.deadline_at:
                target.fail("snipe window closed before the executor ran", cause_of(target, self.clock))
                await repository.save(self.store, target)
                return SnipeOutcome(target_id, SnipeResult.FAILED, "snipe window closed")
            try:
                exchange = await self._account(target)
            except AccountUnavailable as exc:
                target.fail(str(exc), cause_of(target, self.clock))
                await repository.save(self.store, target)
                return SnipeOutcome(target_id, SnipeResult.FAILED, str(exc))
            unreadable = await self._planner.prepare(target, exchange, run)
            if unreadable is not None:
                target.fail(unreadable, cause_of(target, self.clock))
                await repository.save(self.store, target)
                return SnipeOutcome(target_id, SnipeResult.FAILED, unreadable)
            # Recorded before the send: after a crash we know an order may exist.
            target.submit_order(cause_of(target, self.clock), run.lease.token, run.lease.epoch or None)
            try:
                await repository.save(self.store, target)
            except ConcurrencyConflict as exc:
                # Another executor (a process whose lease we cannot see) recorded first and owns the
                # send: standing down here keeps the two from both sending.
                return SnipeOutcome(target_id, SnipeResult.SKIPPED, f"another executor submitted first ({exc})")
            refusal = await self._launch.wait(target, run)
            if refusal is not None:
                return refusal
            sent = await self._sends.until_deadline(target, coid, target.deadline_at, exchange, run)
        else:
            try:
                exchange = await self._account(target)
            except AccountUnavailable as exc:
                # Left executing: nothing can be learnt or recorded without its account.
                return SnipeOutcome(target_id, SnipeResult.FAILED, f"cannot resolve the order: {exc}")
            resumed = await self._resume(target, coid, exchange, run)
            if isinstance(resumed, SnipeOutcome):
                return resumed
            sent = resumed
        outcome = await self._settlement.settle(target, coid, sent, exchange, run)
        plan = run.plan
        if plan is not None and sent.first_at is not None and _log.isEnabledFor(logging.DEBUG):
            _log.debug("snipe %s: the first send started %d µs after its planned instant", target_id,
                       (sent.first_at - plan.first) // timedelta(microseconds=1))
        if sent.first_at is not None:
            outcome = replace(outcome, first_send_at=sent.first_at)
        if sent.not_open:
            _log.info("snipe %s: %d of %d sends refused as not open yet (bracket of at most %d sends, %d trader(s))",
                      target_id, sent.not_open, sent.attempts, plan.dense_sends if plan else 0, run.traders)
            outcome = replace(outcome, not_open=sent.not_open)
        return outcome

    async def _pre_trade_refusal(self, target: SnipeTarget) -> SnipeOutcome | None:
        halted = await self._halt.halted(target.user_id)
        cause = cause_of(target, self.clock)
        if halted:
            target.fail(halted, cause)
            await repository.save(self.store, target)
            return SnipeOutcome(target.target_id, SnipeResult.REFUSED, halted)
        try:
            settings = await self.traders.settings_for(target.user_id)
        except NotFound:
            target.fail("the user no longer exists", cause)
            await repository.save(self.store, target)
            return SnipeOutcome(target.target_id, SnipeResult.REFUSED, "unknown user")
        # The pair's minimum order value is left to the exchange: no extra call may stand right before
        # the send (prepare loads the pair's rules for the order).
        proposal = trade_proposal(
            self.book, settings, quote_amount=target.quote_amount, quote_asset=target.quote_asset,
            exit_plan=target.exit_plan, day=cause.at.date(),
        )
        reasons = risk_refusals(proposal, live=target.live, settings=settings)
        if reasons:
            target.refuse_by_risk(reasons, cause)
            await repository.save(self.store, target)
            return SnipeOutcome(target.target_id, SnipeResult.REFUSED, "; ".join(reasons))
        return None

    async def _account(self, target: SnipeTarget) -> ExchangeTrading:
        if self.accounts is None:
            return self.exchange
        return await self.accounts.trading_for(target.user_id, target.live)

    async def _resume(
        self, target: SnipeTarget, coid: ClientOrderId, exchange: ExchangeTrading, run: Run
    ) -> Sent | SnipeOutcome:
        """The target was left executing: find out what the exchange did before sending again.

        An earlier run's sends were all taken in or refused by the exchange before its lease lapsed
        (`LeaseKeeper.holds`), so before we got ours, unless the lock service lost its data since
        (`LeaseKeeper.earlier_until`); and none started after the deadline. An order taken in may answer
        "not found" for a while: it is looked for through the visibility grace after the last moment
        one could have been taken in (once, when that is before the earliest send time). With nothing
        found, it is sent as a first run would send it: prepared, at launch, not while a stop is active."""
        if target.deadline_at is None or target.execute_at is None:
            raise unscheduled(target)
        horizon = self._lease.earlier_until(target, run)
        last_taken_in = min(horizon, target.deadline_at + self.timing.send_in_flight)
        if last_taken_in < target.execute_at - MAX_CLOCK_LEAD:
            found = await self._lookup.resolve(target, coid, exchange)
        else:
            found = await self._lookup.await_visible(target, coid, last_taken_in + VISIBILITY_GRACE, exchange, run)
        if found is not None:
            return Sent(held=found)
        if run.lease_lost or not await self._lease.renew_if_due(target, run):
            return SnipeOutcome(
                target.target_id, SnipeResult.SKIPPED,
                "lost the lease on this snipe while resolving it; nothing sent, left executing for its holder",
            )
        # Prepared as a first run is (not once the window has closed: nothing will be sent).
        unreadable = (
            await self._planner.prepare(target, exchange, run) if self.clock.now() < target.deadline_at else None
        )
        if unreadable is not None:
            target.fail(unreadable, cause_of(target, self.clock))
            await repository.save(self.store, target)
            return SnipeOutcome(target.target_id, SnipeResult.FAILED, unreadable)
        refusal = await self._launch.wait(target, run)
        if refusal is not None:
            return refusal
        return await self._sends.until_deadline(target, coid, target.deadline_at, exchange, run)
