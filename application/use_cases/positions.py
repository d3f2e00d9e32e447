"""Managing open positions: on each price tick, let the exit plan decide and sell."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from application import repository
from application.errors import (
    AccountUnavailable,
    AmbiguousOutcome,
    ConcurrencyConflict,
    ExchangeError,
    OrderAlreadyExists,
    OrderRefused,
)
from application.ports import (
    AccountBalances,
    Clock,
    EventStore,
    ExchangeAccounts,
    ExchangeTrading,
    OrderReport,
    PriceTick,
)
from application.trade_book import TradeBook
from domain.events import Cause
from domain.position import ExitDecision, Position, PositionStatus, position_stream
from domain.safety import GLOBAL_SCOPE, Halt, SafetySwitch, safety_stream, strictest_halt
from domain.target import SnipeTarget, target_stream
from domain.values import ClientOrderId


# How long a pending exit may answer "not found" before it is taken as never placed.
_MISSING_GRACE = timedelta(seconds=10)
# Refusals saying the account holds less of the coin than the exit asked to sell (FACTS.md).
_SHORT_OF_COIN = frozenset({"10101", "30004", "30005"})
# Below the pair's minimum quantity or order value (MEXC's code, and this adapter's local refusal).
_BELOW_MINIMUM = "30002"


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

    Under an emergency stop (domain.safety.Halt): a person's stop holds every exit until a
    person clears it; a stop tripped automatically by the safety monitor holds take-profits and
    max hold, but stop-loss and trailing stop still sell (the loss it tripped on keeps running).

    An exit sells at most what the position holds, rounded down to the pair's step. When the
    exchange says the account holds less (a buy fee taken from the coin that the fill did not
    show), it sells what the account holds and writes the rest off (DustWrittenOff); so does a
    remainder below the pair's minimum.
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
        self._settled = False  # a pending exit was resolved this tick: the book has news

    async def on_tick(self, tick: PriceTick) -> list[ExitOutcome]:
        await self.book.catch_up(self.store)
        outcomes: list[ExitOutcome] = []
        switches: dict[str, SafetySwitch] = {}
        for view in self.book.open_positions(symbol=tick.symbol.code):
            halt = await self._halt(view.user_id, switches)
            if halt is Halt.EVERYTHING:
                continue
            try:
                outcomes += await self._manage(view.position_id, tick, protective_only=halt is Halt.PROTECTIVE_EXITS_ONLY)
            except ConcurrencyConflict:
                continue  # another process handled this position on this tick
        if outcomes or self._settled:
            self._settled = False
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

    async def _halt(self, user_id: str, switches: dict[str, SafetySwitch]) -> Halt:
        """What the active stops let through for this user; the switches are read once per tick."""
        if self.book.halted(user_id) is None:
            return Halt.NONE
        active = []
        for scope in (GLOBAL_SCOPE, user_id):
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
        if position.pending_exit is not None and not await self._settle_pending(position, cause, exchange):
            await repository.save(self.store, position)
            return outcomes
        while position.status is not PositionStatus.CLOSED:
            decision = position.decide_exit(tick.price, cause.at, protective_only=protective_only)
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
        self, position: Position, decision: ExitDecision, cause: Cause, exchange: ExchangeTrading,
        write_off_rest: bool = False,
    ) -> ExitOutcome:
        """Sell for `decision`. With `write_off_rest`, the decision was cut to what the account
        holds: once it fills in full, what the position holds beyond it is written off."""
        assert position.symbol is not None
        coid = position.submit_exit(decision, cause)
        # Recorded before the send, like the snipe: a crash leaves a trace to reconcile.
        await repository.save(self.store, position)
        report: OrderReport
        try:
            report = await exchange.place_market_sell(position.symbol, decision.quantity, coid)
        except (AmbiguousOutcome, OrderAlreadyExists) as unclear:
            # The sell may be on the exchange: only its client order id can tell. A just-placed
            # order may answer "not found" for a moment (FACTS.md), so "not found" here is no
            # failure: the exit stays pending and _settle_pending calls it missing only after
            # the grace, counted from now. Failing it now would let the next tick sell the same
            # coins again under a new client order id.
            self._missing_since.setdefault(coid.value, cause.at)
            try:
                found = await exchange.query_order(position.symbol, coid)
            except ExchangeError as exc:
                return self._outcome(position, decision, False, f"unresolved, will ask again: {exc}")
            if found is None:
                return self._outcome(position, decision, False, f"not visible yet after '{unclear}': will ask again")
            self._missing_since.pop(coid.value, None)
            report = found
        except OrderRefused as exc:
            position.record_exit_failure(str(exc), cause)  # a final refusal: nothing was placed
            return await self._after_refusal(position, decision, exc, cause, exchange, write_off_rest)
        except ExchangeError as exc:
            position.record_exit_failure(str(exc), cause)  # rate limited, not yet open, clock skew: not placed
            return self._outcome(position, decision, False, str(exc))
        if not report.status.is_final:
            # Accepted, not done yet (MEXC's reply to an order carries no fill): ask once more,
            # else leave it pending; the next round asks again. Recording a failure here would
            # let a new exit sell the same shares while this one fills.
            try:
                report = await exchange.query_order(position.symbol, coid) or report
            except ExchangeError:
                pass
            if not report.status.is_final:
                return self._outcome(position, decision, False, f"{report.status.value}, not done yet: will ask again")
        if report.executed_quantity <= 0:
            reason = "the exchange has no fill for the exit order"  # final with nothing executed
            position.record_exit_failure(reason, cause)
            return self._outcome(position, decision, False, reason)
        position.record_exit_fill(report.average_price, report.executed_quantity, report.fee, cause)
        if write_off_rest and report.executed_quantity == decision.quantity and position.status is not PositionStatus.CLOSED:
            position.write_off(
                f"not in the account: it held only {decision.quantity} {position.symbol.base} to sell", cause
            )
        return self._outcome(position, decision, True, "", report)

    async def _after_refusal(
        self, position: Position, decision: ExitDecision, refusal: OrderRefused, cause: Cause,
        exchange: ExchangeTrading, write_off_rest: bool,
    ) -> ExitOutcome:
        """A refused exit whose refusal would repeat on every tick: the account holds less of
        the coin than the position says, or what is left is below the pair's minimum. Sell what
        can be sold now and write off the rest, rather than be refused again and again."""
        assert position.symbol is not None
        failed = self._outcome(position, decision, False, str(refusal))
        # Meant to sell everything left (a capped exit was, before it was cut to the balance).
        selling_all = write_off_rest or decision.quantity >= position.sellable_within(position.remaining)
        if refusal.code == _BELOW_MINIMUM and selling_all and (
            write_off_rest or position.status is PositionStatus.PARTIALLY_EXITED
        ):
            reason = f"dust: {position.remaining} {position.symbol.base} is below the pair's minimum ({refusal})"
            position.write_off(reason, cause)
            return self._outcome(position, decision, False, f"written off, {reason}")
        balances = _balances_of(exchange)
        if refusal.code not in _SHORT_OF_COIN or balances is None:
            return failed
        try:
            free = await balances.free_balance(position.symbol.base)
        except ExchangeError:
            return failed  # the next tick tries again
        sellable = position.sellable_within(free)
        if sellable >= decision.quantity:
            return failed  # the account holds enough: refused for another reason
        if sellable <= 0:
            reason = f"not in the account: it holds {free} {position.symbol.base} of the {position.remaining} held here"
            position.write_off(reason, cause)
            return self._outcome(position, decision, False, f"written off, {reason}")
        capped = ExitDecision(decision.reason, decision.level, sellable, decision.trigger_price)
        return await self._exit(position, capped, cause, exchange, write_off_rest=selling_all)

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
            self._settled = True
            return True
        if report is None:
            # A fresh order may briefly be "not found": only after a grace is it called missing
            # (and the shares free to sell again).
            first = self._missing_since.setdefault(pending.client_order_id, cause.at)
            if cause.at - first < _MISSING_GRACE:
                return False
            self._missing_since.pop(pending.client_order_id, None)
        position.record_exit_failure("the exit order is not on the exchange", cause)
        self._settled = True
        return True

    @staticmethod
    def _outcome(
        position: Position, decision: ExitDecision, filled: bool, detail: str, report: OrderReport | None = None
    ) -> ExitOutcome:
        price = report.average_price if report is not None else decision.trigger_price
        qty = report.executed_quantity if report is not None else decision.quantity
        return ExitOutcome(position.position_id, decision.reason.value, format(qty, "f"), format(price, "f"), filled, detail)


def _balances_of(exchange: ExchangeTrading) -> AccountBalances | None:
    """The account's balances, when the exchange can tell. Looked up by attribute, not by a
    Protocol isinstance check: a wrapper (telemetry) passes `free_balance` through __getattr__,
    which isinstance does not see on every Python version (3.12 reads attributes statically)."""
    free_balance = getattr(exchange, "free_balance", None)
    return cast(AccountBalances, exchange) if callable(free_balance) else None
