"""A buy's fee, learnt after its fill was recorded without it (issue 14).

MEXC tells an order's fee only through its trades (myTrades: weight 10, from a per-IP budget that
fifty traders filling in the same ten seconds spend whole). A fill is not held back for it: the snipe
records the fill and opens the position at once with the fee unknown (fee asset ""), so the exits
watch from the first second; meanwhile an exit sells what the account holds (exits.py). The fee is
learnt after, when there is budget, and recorded once on the position (EntryFeeLearnt), which takes
it as it would have taken a fee known at the fill:
- first by the snipe that recorded the fill, right after (waiting for budget as background work);
- what that leaves unknown (the worker stopped meanwhile, no budget within the wait, the trade list
  behind the order, an exit pending) by every reconciliation round, at start and then periodically,
  for each position the trade book shows with its fee unknown, open or closed: nothing is left
  unaccounted across a restart. A round never waits for budget (the first one holds trading back
  until it is done); a position it learns nothing for is asked again in a later round, backing off.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import cast

from application import repository
from application.errors import ConcurrencyConflict, ExchangeError
from application.ports import Clock, EventStore, ExchangeTrading, OrderFees, OrderSide
from domain.events import Cause
from domain.position import Position, position_stream
from domain.target import SnipeTarget, target_stream

_log = logging.getLogger(__name__)

# Saves tried when another writer (a price tick's exit, another process) keeps changing the position.
_SAVE_TRIES = 3
# A position whose fee a round could not learn is asked again after this, doubling up to the cap.
_RETRY_FIRST = timedelta(minutes=1)
_RETRY_MAX = timedelta(hours=1)


class EntryFees:
    def __init__(self, store: EventStore, clock: Clock) -> None:
        self.store, self.clock = store, clock
        self._misses: dict[str, tuple[datetime, int]] = {}  # position id -> (not asked before, misses)

    def due(self, position_id: str) -> bool:
        """Whether a round should ask for this position's fee now (not backing off after misses)."""
        miss = self._misses.get(position_id)
        return miss is None or self.clock.now() >= miss[0]

    async def learn(self, position: Position, exchange: ExchangeTrading, *, wait: bool) -> bool | None:
        """Learn the position's entry fee on `exchange` (the account its buy went to) and record it.
        `wait`: wait for rate budget (bounded; see OrderFees). None: nothing to learn here (known
        already, or the account cannot tell: paper fills know theirs); True: recorded (here, or by
        another writer meanwhile); False: not learnt now, a later round asks again."""
        if position.entry_fee_known:
            return None
        fees = _fees_of(exchange)
        if fees is None or position.symbol is None:
            return None
        target = await repository.get(self.store, SnipeTarget, target_stream(position.target_id))
        fill = target.fill
        if fill is None or not fill.exchange_order_id:
            _log.warning("position %s: its buy's fill names no exchange order: its fee cannot be learnt",
                         position.position_id)
            return None
        try:
            fee = await fees.order_fee(position.symbol, fill.exchange_order_id, OrderSide.BUY, fill.quantity,
                                       wait=wait)
        except ExchangeError as exc:  # OrderFees answers None for these; an implementation may raise
            _log.warning("position %s: its buy's fee not learnt (%s)", position.position_id, exc)
            fee = None
        if fee is None:
            return self._missed(position.position_id)
        for _ in range(_SAVE_TRIES):
            if position.entry_fee_known:
                return self._learnt(position.position_id)
            if position.pending_exit is not None:
                # Sized on what the position holds now: the fee waits until that exit is settled.
                return self._missed(position.position_id)
            position.learn_entry_fee(fee[0], fee[1], Cause(self.clock.now(), position.target_id))
            try:
                await repository.save(self.store, position)
            except ConcurrencyConflict:
                position = await repository.get(self.store, Position, position_stream(position.position_id))
                continue
            _log.info("position %s: its buy's fee learnt after the fill: %s %s", position.position_id,
                      format(fee[0], "f"), fee[1])
            return self._learnt(position.position_id)
        return self._missed(position.position_id)

    def _learnt(self, position_id: str) -> bool:
        self._misses.pop(position_id, None)
        return True

    def _missed(self, position_id: str) -> bool:
        _, misses = self._misses.get(position_id, (None, 0))
        backoff = min(_RETRY_FIRST * (2 ** min(misses, 10)), _RETRY_MAX)
        self._misses[position_id] = (self.clock.now() + backoff, misses + 1)
        return False


def _fees_of(exchange: ExchangeTrading) -> OrderFees | None:
    """By attribute, not a Protocol isinstance check: a wrapper (telemetry) passes `order_fee`
    through __getattr__, which isinstance does not see on every Python version."""
    order_fee = getattr(exchange, "order_fee", None)
    return cast(OrderFees, exchange) if callable(order_fee) else None
