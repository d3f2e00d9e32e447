"""The exit plan on each price tick: for every open position of the pair, decide and sell."""

from __future__ import annotations

import logging
from decimal import Decimal

from application import repository
from application.alerts import Alert, NoNotifier, Notifier, Severity
from application.errors import AccountUnavailable, ConcurrencyConflict
from application.ports import Clock, EventStore, ExchangeAccounts, ExchangeTrading, PairRules, PriceTick
from application.trade_book import TradeBook
from application.use_cases.positions.exits import ExitOrders
from application.use_cases.positions.fees import EntryFees
from application.use_cases.positions.outcome import ExitOutcome
from application.use_cases.positions.rules import PairRulesLookup
from application.use_cases.positions.settle import Settlement
from application.views import PositionView
from domain.events import Cause
from domain.position import Position, PositionStatus, position_stream
from domain.safety import Halt, SafetySwitch, safety_stream, strictest_halt
from domain.target import SnipeTarget, target_stream
from domain.values import round_down_to_scale

_log = logging.getLogger(__name__)


class ManagePositions:
    """Stop-loss is decided before take-profit on the same tick (Position.decide_exit).

    A person's emergency stop holds every exit; one the safety monitor tripped still lets the
    stop-loss and trailing stop sell, since the loss it tripped on keeps running. One position's
    failure is logged, counted in `errors` and alerted, and the others on the tick still run.
    """

    def __init__(
        self,
        store: EventStore,
        exchange: ExchangeTrading,
        clock: Clock,
        book: TradeBook,
        accounts: ExchangeAccounts | None = None,
        *,
        market: PairRules | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.store, self.exchange, self.clock, self.book = store, exchange, clock, book
        # Where each position's exits go: the account its buy went to (paper or live).
        self.accounts = accounts
        self.notifier = notifier if notifier is not None else NoNotifier()
        self.errors = 0  # positions whose handling failed with an unexpected error, since start
        self._live: dict[str, bool] = {}  # target id -> live, read once from the target
        self._rules = PairRulesLookup(market)
        self._settlement = Settlement(self._rules)
        self._exits = ExitOrders(store, self._settlement, self._alert)
        self._fees = EntryFees(store, clock)

    async def on_tick(self, tick: PriceTick) -> list[ExitOutcome]:
        await self.book.catch_up(self.store)
        outcomes: list[ExitOutcome] = []
        switches: dict[str, SafetySwitch] = {}
        for view in self.book.open_positions(symbol=tick.symbol.code):
            try:
                halt = await self._halt(view.user_id, switches)
                if halt is Halt.EVERYTHING:
                    continue
                protective_only = halt is Halt.PROTECTIVE_EXITS_ONLY
                outcomes += await self._manage(view.position_id, tick, protective_only=protective_only)
            except ConcurrencyConflict:
                continue  # another process handled this position on this tick
            except Exception as exc:  # noqa: BLE001 - one position's failure must not skip the others
                await self._failed(view, exc)
        if outcomes or self._settlement.settled:
            self._settlement.settled = False
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
        pending = position.pending_exit.client_order_id
        settled = await self._settlement.pending(position, Cause(self.clock.now(), position.target_id), exchange)
        try:
            await repository.save(self.store, position)
        except ConcurrencyConflict:
            # Another round (the risk manager's tick, another worker) wrote the position while the
            # exchange was asked. Nothing was sent here: read it again.
            fresh = await repository.get(self.store, Position, position_stream(position_id))
            if fresh.pending_exit is not None and fresh.pending_exit.client_order_id == pending:
                return False  # still pending there: the next round asks again
            _log.info("position %s: exit %s settled meanwhile by another round", position_id, pending)
            self._settlement.settled = True
            return True
        return settled

    async def learn_entry_fee(self, position_id: str) -> bool | None:
        """Learn the buy fee of a position recorded with it unknown, outside any tick, without waiting
        for rate budget (EntryFees, fees.py). None: nothing to ask now (known, not due after earlier
        misses, or its account cannot tell); True: recorded; False: not learnt this time."""
        if not self._fees.due(position_id):
            return None
        position = await repository.get(self.store, Position, position_stream(position_id))
        try:
            exchange = await self._account(position)
        except AccountUnavailable:
            return False  # its account is not reachable from here
        learnt = await self._fees.learn(position, exchange, wait=False)
        if learnt:
            self._settlement.settled = True  # news for the book at the next tick
        return learnt

    async def close_by_hand(
        self, position: Position, requested_by: str, price: Decimal, cause: Cause
    ) -> ExitOutcome | None:
        """A person's close: a market sell of everything held, by the path the plan's exits take.
        None: nothing sent (a shortfall waits for its next look). Raises AccountUnavailable when
        no account can carry the sell, InvalidTransition when an exit is in flight."""
        exchange = await self._account(position)
        rules = await self._rules.lookup(position, exchange, cause.at)
        decision = position.decide_manual_exit(
            price, requested_by, quantity_scale=rules.quantity_scale if rules is not None else None)
        outcome = await self._exits.send(position, decision, cause, exchange, rules)
        await repository.save(self.store, position)
        if position.status is PositionStatus.CLOSED:
            self._forget(position.position_id)
        return outcome

    async def _failed(self, view: PositionView, exc: Exception) -> None:
        self.errors += 1
        _log.error("position %s (%s, %s): exit handling failed, the other positions go on: %s",
                   view.position_id, view.user_id, view.symbol, exc, exc_info=exc)
        await self._alert(Alert(
            key=f"exit-error:{view.position_id}", severity=Severity.WARNING,
            title=f"exits of position {view.position_id} failed",
            text=f"{view.symbol} for {view.user_id}: {type(exc).__name__}: {exc}. Tried again on the next tick.",
            at=self.clock.now(), user_id=view.user_id,
        ))

    async def _alert(self, alert: Alert) -> None:
        try:
            await self.notifier.send(alert)
        except Exception:  # noqa: BLE001 - an alert must never break trading
            _log.warning("alert %s not delivered", alert.key, exc_info=True)

    async def _halt(self, user_id: str, switches: dict[str, SafetySwitch]) -> Halt:
        """What the active stops let through for this user; the switches are read once per tick."""
        if self.book.halted(user_id) is None:
            return Halt.NONE
        active = []
        for scope in self.book.stop_scopes(user_id):
            if scope not in self.book.stops:
                continue
            if scope not in switches:
                found = await repository.find(self.store, SafetySwitch, safety_stream(scope))
                switches[scope] = found if found is not None else SafetySwitch.for_scope(scope)
            active.append(switches[scope])
        halt = strictest_halt(active)
        # The book saw a stop the switch no longer shows (cleared meanwhile): hold for this tick.
        return halt if halt is not Halt.NONE else Halt.EVERYTHING

    async def _manage(self, position_id: str, tick: PriceTick, protective_only: bool = False) -> list[ExitOutcome]:
        position = await repository.get(self.store, Position, position_stream(position_id))
        cause = Cause(self.clock.now(), position.target_id)
        position.observe(tick.price, cause)
        outcomes: list[ExitOutcome] = []
        try:
            exchange = await self._account(position)
        except AccountUnavailable:
            await repository.save(self.store, position)  # the price observed still counts
            return outcomes
        if position.pending_exit is not None and not await self._settlement.pending(position, cause, exchange):
            await repository.save(self.store, position)
            return outcomes
        while position.status is not PositionStatus.CLOSED:
            decision = position.decide_exit(tick.price, cause.at, protective_only=protective_only)
            if decision is None:
                break
            rules = await self._rules.lookup(position, exchange, cause.at)
            if rules is not None:
                decision = position.decide_exit(
                    tick.price, cause.at, protective_only=protective_only, quantity_scale=rules.quantity_scale)
                if decision is None:
                    break
            elif decision.quantity != round_down_to_scale(decision.quantity, position.quantity_scale):
                self._rules.wait(position, decision)
                break
            outcome = await self._exits.send(position, decision, cause, exchange, rules)
            if outcome is None:
                break
            outcomes.append(outcome)
            if not outcome.filled:
                break
        await repository.save(self.store, position)
        if position.status is PositionStatus.CLOSED:
            self._forget(position.position_id)
        return outcomes

    def _forget(self, position_id: str) -> None:
        self._exits.forget(position_id)
        self._rules.forget(position_id)

    async def _account(self, position: Position) -> ExchangeTrading:
        if self.accounts is None:
            return self.exchange
        live = self._live.get(position.target_id)
        if live is None:
            target = await repository.get(self.store, SnipeTarget, target_stream(position.target_id))
            live = self._live[position.target_id] = target.live
        return await self.accounts.trading_for(position.user_id, live)
