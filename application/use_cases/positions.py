"""Managing open positions: on each price tick, let the exit plan decide and sell."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from application import repository
from application.errors import AccountUnavailable, AmbiguousOutcome, ConcurrencyConflict, ExchangeError, OrderAlreadyExists
from application.ports import Clock, EventStore, ExchangeAccounts, ExchangeTrading, OrderReport, PriceTick
from application.trade_book import TradeBook
from domain.events import Cause
from domain.position import ExitDecision, Position, PositionStatus, position_stream
from domain.target import SnipeTarget, target_stream
from domain.values import ClientOrderId


# How long a pending exit may answer "not found" before it is taken as never placed.
_MISSING_GRACE = timedelta(seconds=10)


@dataclass(frozen=True, slots=True)
class ExitOutcome:
    position_id: str
    reason: str
    quantity: str
    price: str
    filled: bool
    detail: str = ""


class ManagePositions:
    """Stop-loss is decided before take-profit on the same tick (see Position.decide_exit).

    While an emergency stop is active for the user, no exit order is placed either:
    the stop halts every new order until a person clears it.
    """

    def __init__(
        self,
        store: EventStore,
        exchange: ExchangeTrading,
        clock: Clock,
        book: TradeBook,
        accounts: ExchangeAccounts | None = None,
    ) -> None:
        self.store, self.exchange, self.clock, self.book = store, exchange, clock, book
        # Where each position's exits go: the account its buy went to (paper or live).
        self.accounts = accounts
        self._live: dict[str, bool] = {}  # target id -> live, read once from the target
        self._missing_since: dict[str, datetime] = {}  # pending exit's client order id -> first "not found"

    async def on_tick(self, tick: PriceTick) -> list[ExitOutcome]:
        await self.book.catch_up(self.store)
        outcomes: list[ExitOutcome] = []
        for view in self.book.open_positions(symbol=tick.symbol.code):
            if self.book.halted(view.user_id):
                continue
            try:
                outcomes += await self._manage(view.position_id, tick)
            except ConcurrencyConflict:
                continue  # another process handled this position on this tick
        if outcomes:
            await self.book.catch_up(self.store)
        return outcomes

    async def settle_pending_exit(self, position_id: str) -> bool | None:
        """Resolve a position's pending exit by its client order id, outside any tick.
        None: nothing was pending; True: settled (fill or failure recorded); False: still unknown."""
        position = await repository.get(self.store, Position, position_stream(position_id))
        if position.pending_exit is None:
            return None
        try:
            exchange = await self._account(position)
        except AccountUnavailable:
            return False  # its account is not reachable from here: still unknown
        settled = await self._settle_pending(position, Cause(self.clock.now(), position.target_id), exchange)
        await repository.save(self.store, position)
        return settled

    async def _manage(self, position_id: str, tick: PriceTick) -> list[ExitOutcome]:
        position = await repository.get(self.store, Position, position_stream(position_id))
        cause = Cause(self.clock.now(), position.target_id)
        position.observe(tick.price, cause)
        outcomes: list[ExitOutcome] = []
        try:
            exchange = await self._account(position)
        except AccountUnavailable:
            await repository.save(self.store, position)  # the price observed still counts
            return outcomes
        if position.pending_exit is not None and not await self._settle_pending(position, cause, exchange):
            await repository.save(self.store, position)
            return outcomes
        while position.status is not PositionStatus.CLOSED:
            decision = position.decide_exit(tick.price, cause.at)
            if decision is None:
                break
            outcome = await self._exit(position, decision, cause, exchange)
            outcomes.append(outcome)
            if not outcome.filled:
                break
        await repository.save(self.store, position)
        return outcomes

    async def _account(self, position: Position) -> ExchangeTrading:
        if self.accounts is None:
            return self.exchange
        live = self._live.get(position.target_id)
        if live is None:
            target = await repository.get(self.store, SnipeTarget, target_stream(position.target_id))
            live = self._live[position.target_id] = target.live
        return await self.accounts.trading_for(position.user_id, live)

    async def _exit(
        self, position: Position, decision: ExitDecision, cause: Cause, exchange: ExchangeTrading
    ) -> ExitOutcome:
        assert position.symbol is not None
        coid = position.submit_exit(decision, cause)
        # Recorded before the send, like the snipe: a crash leaves a trace to reconcile.
        await repository.save(self.store, position)
        report: OrderReport | None
        try:
            report = await exchange.place_market_sell(position.symbol, decision.quantity, coid)
        except (AmbiguousOutcome, OrderAlreadyExists):
            try:
                report = await exchange.query_order(position.symbol, coid)
            except ExchangeError as exc:
                # Still unknown: the exit stays pending and the next tick asks again.
                return self._outcome(position, decision, False, f"unresolved, will ask again: {exc}")
        except ExchangeError as exc:
            position.record_exit_failure(str(exc), cause)
            return self._outcome(position, decision, False, str(exc))
        if report is not None and not report.status.is_final:
            # Accepted, not done yet (MEXC's reply to an order carries no fill): ask once more,
            # else leave it pending; the next round asks again. Recording a failure here would
            # let a new exit sell the same shares while this one fills.
            try:
                report = await exchange.query_order(position.symbol, coid) or report
            except ExchangeError:
                pass
            if not report.status.is_final:
                return self._outcome(position, decision, False, f"{report.status.value}, not done yet: will ask again")
        if report is None or report.executed_quantity <= 0:
            reason = "the exchange has no fill for the exit order"
            position.record_exit_failure(reason, cause)
            return self._outcome(position, decision, False, reason)
        position.record_exit_fill(report.average_price, report.executed_quantity, report.fee, cause)
        return self._outcome(position, decision, True, "", report)

    async def _settle_pending(self, position: Position, cause: Cause, exchange: ExchangeTrading) -> bool:
        """An exit left pending (lost reply, crash) is resolved by its client order id
        before anything new is decided, so the same shares are never sold twice."""
        pending = position.pending_exit
        assert pending is not None and position.symbol is not None
        try:
            report = await exchange.query_order(position.symbol, ClientOrderId(pending.client_order_id))
        except ExchangeError:
            return False
        if report is not None and not report.status.is_final:
            return False  # still working on the exchange
        if report is not None and report.executed_quantity > 0:
            self._missing_since.pop(pending.client_order_id, None)
            position.record_exit_fill(report.average_price, report.executed_quantity, report.fee, cause)
            return True
        if report is None:
            # A fresh order may briefly be "not found": only after a grace is it called missing
            # (and the shares free to sell again).
            first = self._missing_since.setdefault(pending.client_order_id, cause.at)
            if cause.at - first < _MISSING_GRACE:
                return False
            self._missing_since.pop(pending.client_order_id, None)
        position.record_exit_failure("the exit order is not on the exchange", cause)
        return True

    @staticmethod
    def _outcome(
        position: Position, decision: ExitDecision, filled: bool, detail: str, report: OrderReport | None = None
    ) -> ExitOutcome:
        price = report.average_price if report is not None else decision.trigger_price
        qty = report.executed_quantity if report is not None else decision.quantity
        return ExitOutcome(position.position_id, decision.reason.value, format(qty, "f"), format(price, "f"), filled, detail)
