"""Exits whose outcome was not known, resolved by their client order id before anything new is
sold, so the same coins are never sold twice."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from application.errors import ExchangeError
from application.ports import ExchangeTrading, OrderSide, SymbolRules
from application.use_cases.positions.outcome import ExitOutcome, unopened
from application.use_cases.positions.rules import PairRulesLookup, step_of
from domain.events import Cause
from domain.position import Position, PositionStatus
from domain.values import ClientOrderId

_log = logging.getLogger(__name__)

# How long a pending exit may answer "not found" before it is taken as never placed.
_MISSING_GRACE = timedelta(seconds=10)
# How many of a position's failed exits (newest first) are asked about when coins are missing.
_LATE_FILL_LOOKUPS = 5


class Settlement:
    def __init__(self, rules: PairRulesLookup) -> None:
        self.rules = rules
        self.settled = False  # an exit was resolved since the book last caught up: the book has news
        self._missing_since: dict[str, datetime] = {}  # pending exit's client order id -> first "not found"

    def unclear(self, client_order_id: str, at: datetime) -> None:
        """A send without a clear answer: from `at` on, "not found" counts towards the grace."""
        self._missing_since.setdefault(client_order_id, at)

    def seen(self, client_order_id: str) -> None:
        self._missing_since.pop(client_order_id, None)

    async def pending(self, position: Position, cause: Cause, exchange: ExchangeTrading) -> bool:
        """Resolve the position's pending exit (lost reply, crash); False while it is still unknown."""
        pending = position.pending_exit
        if pending is None or position.symbol is None:
            raise unopened(position)
        try:
            report = await exchange.query_order(position.symbol, ClientOrderId(pending.client_order_id))
        except ExchangeError:
            return False
        if report is not None and not report.status.is_final:
            return False  # still working on the exchange
        if report is not None and report.executed_quantity > 0:
            self.seen(pending.client_order_id)
            rules = await self.rules.lookup(position, exchange, cause.at)
            position.record_exit_fill(report.average_price, report.executed_quantity, report.fee, cause,
                                      quantity_scale=step_of(rules))
            self.settled = True
            return True
        if report is None:
            # A fresh order may briefly be "not found": only after a grace is it called missing
            # (and the coins free to sell again). Should it show later after all, a shortfall
            # finds it (late_fills).
            first = self._missing_since.setdefault(pending.client_order_id, cause.at)
            if cause.at - first < _MISSING_GRACE:
                return False
            self.seen(pending.client_order_id)
        position.record_exit_failure("the exit order is not on the exchange", cause)
        self.settled = True
        return True

    async def late_fills(
        self, position: Position, cause: Cause, exchange: ExchangeTrading, rules: SymbolRules | None,
    ) -> ExitOutcome | None:
        """Exits recorded failed or missing that the exchange shows filled after all (a lost reply,
        visible past the grace) are recorded as the fills they were. The last one's outcome, or None."""
        if position.symbol is None:
            raise unopened(position)
        found: ExitOutcome | None = None
        for coid in list(reversed(position.failed_exits))[:_LATE_FILL_LOOKUPS]:
            if position.status is PositionStatus.CLOSED:
                break
            try:
                report = await exchange.query_order(position.symbol, ClientOrderId(coid))
            except ExchangeError:
                continue
            if report is None or not report.status.is_final or report.executed_quantity <= 0:
                continue
            if report.side is not OrderSide.SELL or report.executed_quantity > position.remaining:
                _log.error("position %s: exit %s shows %s %s executed, which does not fit the %s held: "
                           "left for a person",
                           position.position_id, coid, report.side.value, report.executed_quantity, position.remaining)
                continue
            submitted = position.failed_exits[coid]
            position.record_late_exit_fill(coid, report.average_price, report.executed_quantity, report.fee, cause,
                                           quantity_scale=step_of(rules))
            self.settled = True
            _log.warning("position %s: exit %s, recorded failed, filled after all: %s at %s recorded",
                         position.position_id, coid, report.executed_quantity, report.average_price)
            found = ExitOutcome(position.position_id, submitted.reason, format(report.executed_quantity, "f"),
                                format(report.average_price, "f"), True,
                                f"exit {coid}, recorded failed, filled after all: recorded as its fill")
        return found
