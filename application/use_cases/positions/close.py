"""A person's close of one of their positions, by the exit path the plan's exits take."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import cast

from application import repository
from application.alerts import Notifier
from application.errors import AccountUnavailable, ApplicationError, ConcurrencyConflict, NotFound
from application.ports import Clock, EventStore, ExchangeAccounts, ExchangeTrading, MarketData
from application.trade_book import TradeBook
from application.use_cases.positions.manage import ManagePositions
from application.use_cases.safety import active_stops
from application.views import PositionView
from domain.errors import EmergencyStopActive, InvalidTransition, InvalidValue
from domain.events import Cause, ManualExitFilled
from domain.position import ExitReason, Position, PositionStatus, position_stream

_log = logging.getLogger(__name__)

# How often a close is tried again when another process recorded on the position meanwhile.
_CLOSE_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class PositionClosure:
    """What a close by hand did. `position`: the position after it; `sold`, `price`: what closes
    by hand sold of it (0 and None: nothing); `already`: closing or closed before, nothing sent."""

    position: PositionView
    state: str  # "closed", "closing" (a sell is out, its outcome not known yet), or the position's status
    sold: Decimal
    price: Decimal | None
    realised_pnl: Decimal
    already: bool
    detail: str = ""


class PositionNotClosed(ApplicationError):
    """The close by hand sold nothing (refused, or the exchange could not be asked); the message says why."""


class ClosePosition:
    """A market sell of everything the position holds, recorded as the person's exit (reason
    "manual", `requested_by`).

    Idempotent: a position closed, or whose close is on its way, answers its state and sends
    nothing. A person's emergency stop refuses it (EmergencyStopActive); one the safety monitor
    tripped lets it through, as it lets the protective exits. Another user's position is NotFound.
    """

    def __init__(
        self, store: EventStore, accounts: ExchangeAccounts, clock: Clock, *, market: MarketData | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.store, self.accounts, self.clock, self.market = store, accounts, clock, market
        no_default = cast(ExchangeTrading, _NoDefaultAccount())
        self._exits = ManagePositions(store, no_default, clock, TradeBook(), accounts, market=market,
                                      notifier=notifier)

    async def __call__(
        self, user_id: str, position_id: str, *, requested_by: str | None = None, reason: str = "manual",
    ) -> PositionClosure:
        """`requested_by`: who asked (default the user), recorded with the exit. `reason`: the exit's
        rule as recorded; a person's close has one, "manual" (ExitReason.MANUAL)."""
        if reason != ExitReason.MANUAL.value:
            raise InvalidValue(f"a close by hand is recorded with reason 'manual', not {reason!r}")
        by = (requested_by or user_id).strip()
        tried = False  # this call may have sent a sell whose record met another process's
        for _ in range(_CLOSE_ATTEMPTS):
            position = await self._own(user_id, position_id)
            if position.status is PositionStatus.CLOSED:
                return await self._closure(position, already=not tried)
            pending = position.pending_exit
            if pending is not None:
                if pending.reason != ExitReason.MANUAL.value:
                    selling = f"selling by its {pending.reason.replace('_', ' ')} exit (try again in a moment)"
                    raise InvalidTransition(f"position {position_id}", selling, "be closed by hand")
                # A close sent before (by an earlier call, or this one): asked for by its client order id.
                settled = await self._exits.settle_pending_exit(position_id)
                position = await self._own(user_id, position_id)
                if settled is False:
                    return await self._closure(position, already=not tried, closing=True,
                                               detail="the sell is out, its outcome not known yet: asked again on the "
                                                      "next close")
                if tried or position.status is PositionStatus.CLOSED:
                    return await self._closure(position, already=not tried)
                continue  # an earlier close that sold nothing: this one sells
            stops = [s for s in await active_stops(self.store, user_id) if not s.automatic]
            if stops:
                raise EmergencyStopActive(stops[0].describe())
            cause = Cause(self.clock.now(), f"close-{position_id}")
            price = await self._price(position)
            try:
                outcome = await self._exits.close_by_hand(position, by, price, cause)
            except ConcurrencyConflict:
                # Another process recorded on it meanwhile. If our sell left, its record is found
                # pending on the next look and settled by its client order id; else none left.
                tried = True
                continue
            detail = outcome.detail if outcome is not None else ""
            if position.pending_exit is not None:
                return await self._closure(position, already=False, closing=True,
                                           detail=detail or "the sell is out, its outcome not known yet")
            if (outcome is not None and outcome.filled) or position.status is PositionStatus.CLOSED:
                return await self._closure(position, already=False, detail=detail)
            why = detail or "the account holds less of the coin than the position: looked at again shortly"
            raise PositionNotClosed(f"position {position_id} was not closed, nothing sold: {why}"[:500])
        raise ConcurrencyConflict(position_stream(position_id), 0)

    async def _own(self, user_id: str, position_id: str) -> Position:
        position = await repository.find(self.store, Position, position_stream(position_id))
        if position is None or position.user_id != user_id or not position.position_id:
            raise NotFound(f"unknown position id: {position_id}")
        return position

    async def _price(self, position: Position) -> Decimal:
        """The last price seen, recorded with the sell as what the person saw (the sell is at
        market whatever it is); the entry price when none can be read."""
        source = self.market
        if source is not None and position.symbol is not None:
            try:
                price = await source.last_price(position.symbol)
            except ApplicationError as exc:
                _log.warning("close of %s: no price for %s (%s): the entry price is recorded instead",
                             position.position_id, position.symbol, exc)
                price = None
            if price is not None and price > 0:
                return price
        return position.entry_price

    async def _closure(
        self, position: Position, *, already: bool, detail: str = "", closing: bool = False
    ) -> PositionClosure:
        """The position's view, folded from its own stream (never behind the read models)."""
        book = TradeBook()
        sold = proceeds = Decimal(0)
        for rec in await self.store.load(position.stream_id):
            book.apply(rec)
            if isinstance(rec.event, ManualExitFilled):
                sold += rec.event.quantity
                proceeds += rec.event.proceeds
        view = book.positions[position.position_id]
        # The average price of what was sold by hand, to 18 places at most (as the API writes decimals).
        price = (proceeds / sold).quantize(Decimal(1).scaleb(-18)).normalize() if sold > 0 else None
        state = "closing" if closing else view.status
        return PositionClosure(view, state, sold, price, view.realised_pnl, already, detail)


class _NoDefaultAccount:
    """ClosePosition always routes through ExchangeAccounts: there is no default account."""

    def __getattr__(self, name: str) -> object:
        raise AccountUnavailable("no exchange account for this position")
