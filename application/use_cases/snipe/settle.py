"""Settling a snipe: how its sends ended, recorded, and the position a fill opens. No failure is
recorded while an order may exist: a send that landed is a fill, whatever the later replies said."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from decimal import Decimal

from application import repository
from application.errors import ConcurrencyConflict, ExchangeError, NotFound, OrderRefused
from application.ports import Clock, EventStore, ExchangeTrading, MarketData, OrderReport
from application.telemetry import FILLS, Telemetry
from application.timing import SnipeTiming
from application.trade_book import TradeBook
from application.use_cases.positions.fees import EntryFees
from application.use_cases.snipe.halt import HALT_READ_TIMEOUT, with_halt_note
from application.use_cases.snipe.lookup import VISIBILITY_GRACE, OrderLookup, is_fill
from application.use_cases.snipe.outcome import SnipeOutcome, SnipeResult, cause_of, mode, unscheduled
from application.use_cases.snipe.run import Run, Sent
from application.use_cases.snipe.send import Sends
from domain.position import Position
from domain.target import SnipeTarget
from domain.values import ClientOrderId

_log = logging.getLogger(__name__)

# MEXC's code for a balance too small for the order (FACTS.md).
_INSUFFICIENT_BALANCE = "10101"
# How long the outcome of a send (a fill above all) is retried while the store cannot be reached,
# before the run gives up and leaves the target executing for the reconciliation.
_RECORD_RETRY_FOR = timedelta(seconds=30)
_RECORD_RETRY_MAX = timedelta(seconds=2)


class Settlement:
    def __init__(
        self, store: EventStore, book: TradeBook, market: MarketData, clock: Clock, timing: SnipeTiming,
        telemetry: Telemetry, lookup: OrderLookup, sends: Sends,
    ) -> None:
        self.store, self.book, self.market, self.clock = store, book, market, clock
        self.timing, self.telemetry, self.lookup, self.sends = timing, telemetry, lookup, sends
        self.fees = EntryFees(store, clock)

    async def settle(
        self, target: SnipeTarget, coid: ClientOrderId, sent: Sent, exchange: ExchangeTrading, run: Run
    ) -> SnipeOutcome:
        """Record how the sends ended. With no order held, it is looked for once more (through the
        visibility grace after a send with no clear answer) before a failure, a rejection or a halt is
        recorded. When the exchange cannot tell, AmbiguousOutcome is raised and the target stays
        executing (the reconciliation resolves it by its client order id)."""
        if target.deadline_at is None:
            raise unscheduled(target)
        if sent.lease_lost is not None:
            # Another executor may hold the snipe now: what is left to learn or record is its to do.
            return SnipeOutcome(
                target.target_id, SnipeResult.SKIPPED, f"{sent.lease_lost}; left executing for its holder",
                sent.attempts,
            )
        held = sent.held
        if held is None and sent.unclear_at is not None:
            give_up = sent.unclear_at + VISIBILITY_GRACE
            if isinstance(sent.error, OrderRefused) and sent.error.code == _INSUFFICIENT_BALANCE:
                # A resend refused for the balance the unclear send may have spent: evidence that
                # it landed. Looked for a whole grace more before anything is recorded.
                give_up = max(give_up, self.clock.now() + VISIBILITY_GRACE)
            held = await self.lookup.await_visible(target, coid, give_up, exchange)
        elif held is None and sent.halted is None and not isinstance(sent.error, OrderRefused):
            # The deadline passed: one last look (an order a crashed run sent may have shown since).
            held = await self.lookup.resolve(target, coid, exchange)
        if held is not None and sent.held is None and sent.attempts:
            self.sends.accepted(target)
        final = None if held is None else await self.lookup.confirm(target, held, target.deadline_at, exchange)
        if final is not None and is_fill(final):
            return await self._record_fill(target, final, sent.attempts, await self._quantity_scale(target, final),
                                           exchange, run.halt_read_age)
        cause = cause_of(target, self.clock)
        result = SnipeResult.FAILED
        if final is not None:
            detail = f"order {coid} ended {final.status.value} with nothing bought after {sent.attempts} attempts"
            if target.max_entry_price is not None:
                detail = await self._cap_missed(target, coid, final)
            target.fail(detail, cause)
        elif sent.halted is not None:
            detail, result = sent.halted, SnipeResult.REFUSED
            target.fail(detail, cause)
        elif isinstance(sent.error, OrderRefused):
            target.record_rejection(sent.error.code, str(sent.error), sent.attempts, cause)
            detail = f"rejected: {sent.error}"
        else:
            last = f" (last reply: {sent.error})" if sent.error else ""
            detail = f"no fill by the deadline after {sent.attempts} attempts{last}"
            target.fail(with_halt_note(detail, run), cause)
        try:
            await self.record(target)
        except ConcurrencyConflict as exc:
            # Another executor (its lease lapsed into ours) recorded this snipe's outcome first.
            return SnipeOutcome(target.target_id, SnipeResult.SKIPPED, f"outcome already recorded ({exc})",
                                sent.attempts)
        return SnipeOutcome(target.target_id, result, detail, sent.attempts)

    async def _cap_missed(self, target: SnipeTarget, coid: ClientOrderId, final: OrderReport) -> str:
        """Why a capped entry (an IMMEDIATE_OR_CANCEL limit buy at the cap) bought nothing: the price
        just after, best effort (one bounded read, never holding the record back long)."""
        if target.symbol is None or target.max_entry_price is None:
            raise unscheduled(target)
        cap = format(target.max_entry_price, "f")
        price: Decimal | None = None
        try:
            price = await asyncio.wait_for(self.market.last_price(target.symbol), HALT_READ_TIMEOUT.total_seconds())
        except Exception as exc:  # the price is only the explanation: the outcome is recorded without it
            _log.warning("snipe %s: no price for the capped entry's record (%s: %s)", target.target_id,
                         type(exc).__name__, exc)
        ended = f"order {coid} ended {final.status.value} with nothing bought"
        if price is not None and price > target.max_entry_price:
            return f"no fill at or below the cap {cap}: the price opened at {format(price, 'f')} ({ended})"
        seen = "" if price is None else f"; the last price is {format(price, 'f')}"
        return f"no fill at or below the cap {cap}: nothing was offered at or below it when the order arrived " \
               f"({ended}{seen})"

    async def _quantity_scale(self, target: SnipeTarget, report: OrderReport) -> int:
        """The pair's quantity step, for selling later. A pair this new may be missing from the
        exchange's symbol list; then the fill itself shows the step the exchange used."""
        if target.symbol is None:
            raise unscheduled(target)
        try:
            return (await self.market.symbol_rules(target.symbol)).quantity_scale
        except (NotFound, ExchangeError):
            exponent = report.executed_quantity.normalize().as_tuple().exponent
            return max(0, -exponent) if isinstance(exponent, int) else 8

    async def _record_fill(
        self, target: SnipeTarget, report: OrderReport, attempts: int, quantity_scale: int, exchange: ExchangeTrading,
        halt_read_age: timedelta | None = None,
    ) -> SnipeOutcome:
        """Record the fill and open its position at once, with the fee the report has (the exchange
        gives it only when known or obtainable without waiting for rate budget: fee_asset "" else),
        so the exits watch from now on. Then a fee not known is learnt, waiting for budget as
        background work, and recorded on the position (EntryFeeLearnt); what this leaves unknown,
        the reconciliation learns (application/use_cases/positions/fees.py)."""
        if target.symbol is None or target.execute_at is None or target.exit_plan is None:
            raise unscheduled(target)
        now = self.clock.now()
        cause = cause_of(target, self.clock, now)
        latency = Decimal((now - target.execute_at) // timedelta(microseconds=1)) / 1000
        target.record_fill(
            report.exchange_order_id, report.average_price, report.executed_quantity, report.executed_quote,
            report.fee, report.fee_asset, attempts, latency, cause,
            halt_read_age_ms=None if halt_read_age is None else halt_read_age // timedelta(milliseconds=1),
        )
        position = Position.open(
            target.target_id, target.user_id, target.symbol, report.average_price, report.executed_quantity,
            report.executed_quote, report.fee, report.fee_asset, quantity_scale, target.exit_plan, cause,
        )
        try:
            await self.record(target, position)
        except ConcurrencyConflict as exc:
            # Someone recorded this fill already; the exchange still holds one order.
            return SnipeOutcome(target.target_id, SnipeResult.SKIPPED, f"fill already recorded ({exc})", attempts,
                                report)
        self.telemetry.count(FILLS, side="buy", mode=mode(target))
        try:
            await self.book.catch_up(self.store)
        except Exception as exc:  # recorded: the trade book catches up at its next read
            _log.warning("snipe %s: fill recorded, the trade book not caught up (%s: %s)", target.target_id,
                         type(exc).__name__, exc)
        detail, fee_late = f"filled after {attempts} attempts", False
        if not position.entry_fee_known:
            try:
                fee_late = await self.fees.learn(position, exchange, wait=True) is True
            except Exception as exc:  # the fill is recorded: its fee is learnt by the reconciliation instead
                _log.warning("snipe %s: its fee not learnt after the fill (%s: %s)", target.target_id,
                             type(exc).__name__, exc)
            detail += "; its fee learnt after the fill was recorded" if fee_late else \
                "; its fee not known yet (the reconciliation learns it)"
        return SnipeOutcome(target.target_id, SnipeResult.FILLED, detail, attempts, report, fee_late=fee_late)

    async def record(self, target: SnipeTarget, *others: Position) -> None:
        """Save what a send led to, retrying the store's errors (a database outage across the launch)
        for `_RECORD_RETRY_FOR`: a fill is never dropped for a passing outage. After that the error is
        raised and the reconciliation records the order it finds by its client order id. A save that
        landed though its answer was lost comes back as ConcurrencyConflict."""
        give_up = self.clock.now() + _RECORD_RETRY_FOR
        delay = self.timing.retry_interval
        while True:
            try:
                await repository.save(self.store, target, *others)
                return
            except ConcurrencyConflict:
                raise
            except Exception as exc:  # the store's own errors (e.g. the database unreachable)
                if self.clock.now() >= give_up:
                    raise
                delay = min(max(delay * 2, timedelta(milliseconds=100)), _RECORD_RETRY_MAX)
                _log.warning("snipe %s: recording its outcome failed (%s: %s); trying again in %d ms",
                             target.target_id, type(exc).__name__, exc, delay // timedelta(milliseconds=1))
                await self.clock.sleep(delay)
