"""Managing open positions: on each price tick, let the exit plan decide and sell."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import cast

from application import repository
from application.alerts import Alert, NoNotifier, Notifier, Severity
from application.errors import (
    AccountUnavailable,
    AmbiguousOutcome,
    ApplicationError,
    ConcurrencyConflict,
    ExchangeError,
    NotFound,
    OrderAlreadyExists,
    OrderRefused,
)
from application.ports import (
    AccountBalances,
    Clock,
    EventStore,
    ExchangeAccounts,
    ExchangeTrading,
    MarketData,
    OrderReport,
    OrderSide,
    PairRules,
    PriceTick,
    SymbolRules,
)
from application.trade_book import TradeBook
from application.use_cases.safety import active_stops
from application.views import PositionView
from domain.errors import EmergencyStopActive, InvalidTransition, InvalidValue
from domain.events import Cause, ManualExitFilled
from domain.position import ExitDecision, ExitReason, Position, PositionStatus, position_stream
from domain.safety import Halt, SafetySwitch, safety_stream, strictest_halt
from domain.target import SnipeTarget, target_stream
from domain.values import ClientOrderId, round_down_to_scale

_log = logging.getLogger(__name__)

# How long a pending exit may answer "not found" before it is taken as never placed.
_MISSING_GRACE = timedelta(seconds=10)
# Refusals saying the account holds less of the coin than the exit asked to sell (FACTS.md).
_SHORT_OF_COIN = frozenset({"10101", "30004", "30005"})
# Below the pair's minimum quantity or order value (MEXC's code, and this adapter's local refusal).
_BELOW_MINIMUM = "30002"
# After the pair's rules could not be learnt, how long before asking again.
_RULES_RETRY = timedelta(seconds=30)
# An account holding less of the coin than the position by more than a fee is looked at a
# second time this much later before anything is concluded...
_SHORTFALL_RECHECK = timedelta(seconds=5)
# ...and then again this often, while it lasts.
_SHORTFALL_BACKOFF = timedelta(seconds=60)
# What may be missing without a second look, and written off: the buy fee MEXC may have taken
# from the coin unseen (up to this many times the pair's taker fee) plus one step.
_FEE_SLACK = Decimal(2)
_DEFAULT_TAKER_FEE = Decimal("0.0005")
# How many of a position's failed exits (newest first) are asked about when coins are missing.
_LATE_FILL_LOOKUPS = 5


@dataclass(frozen=True, slots=True)
class ExitOutcome:
    position_id: str
    reason: str
    quantity: str
    price: str
    filled: bool
    detail: str = ""


@dataclass(slots=True)
class _Shortfall:
    """A position whose account held less of the coin than it says, by more than a fee."""

    first_seen: datetime
    next_look: datetime
    alerted: bool = False


class ManagePositions:
    """Stop-loss is decided before take-profit on the same tick (see Position.decide_exit).

    Under an emergency stop (domain.safety.Halt): a person's stop holds every exit until a
    person clears it; a stop tripped automatically by the safety monitor holds take-profits and
    max hold, but stop-loss and trailing stop still sell (the loss it tripped on keeps running).
    Each position is handled on its own: an error with one (its store, its account) is logged,
    counted in `errors` and alerted, and the other positions on the tick still run.

    An exit sells at most what the position holds, rounded down to the pair's step as the
    exchange states it (`PairRules`, asked before each sell: the step recorded at the fill may
    be a guess). Nothing is ever written off on a step that is not the exchange's: while the
    rules are unknown, an exit sells what the recorded step allows and keeps the rest open.

    When the account holds less of the coin than the position (a 10101 refusal, or the balance
    read before the first all-out exit of a position whose buy fee was never learnt):
    - missing no more than the buy fee MEXC may have taken from the coin plus one step: it
      sells what the account holds and writes the rest off (DustWrittenOff);
    - missing more: nothing is written off. The position's earlier exits recorded failed are
      asked for by client order id, and one that filled after all is recorded as the fill it
      was. Else the balance is read again `_SHORTFALL_RECHECK` later; still short, a person is
      alerted, what the account holds is sold, and the rest stays open (looked at again every
      `_SHORTFALL_BACKOFF`).
    A remainder the exchange refuses as below the pair's minimum (30002) is written off too.
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
        # The pairs' rules when the account an exit goes to cannot tell them (the paper broker).
        self.market = market
        self.notifier = notifier if notifier is not None else NoNotifier()
        self.errors = 0  # positions whose handling failed with an unexpected error, since start
        self._live: dict[str, bool] = {}  # target id -> live, read once from the target
        self._missing_since: dict[str, datetime] = {}  # pending exit's client order id -> first "not found"
        self._settled = False  # a pending exit was resolved this tick: the book has news
        self._rules_retry_at: dict[str, datetime] = {}  # symbol -> when to ask for its rules again
        self._short: dict[str, _Shortfall] = {}  # position id -> coins found missing
        self._balance_looked: set[str] = set()  # positions with an unknown buy fee whose balance was read
        self._waiting_for_rules: set[str] = set()  # positions holding a remainder finer than the known step

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
        pending = position.pending_exit.client_order_id
        settled = await self._settle_pending(position, Cause(self.clock.now(), position.target_id), exchange)
        try:
            await repository.save(self.store, position)
        except ConcurrencyConflict:
            # Another round (the risk manager's tick, another worker) wrote the position while the
            # exchange was asked: the store refused this copy. Nothing was sent here; read again.
            fresh = await repository.get(self.store, Position, position_stream(position_id))
            if fresh.pending_exit is not None and fresh.pending_exit.client_order_id == pending:
                return False  # still pending there: the next round asks again
            _log.info("position %s: exit %s settled meanwhile by another round", position_id, pending)
            self._settled = True
            return True
        return settled

    async def close_by_hand(
        self, position: Position, requested_by: str, price: Decimal, cause: Cause
    ) -> ExitOutcome | None:
        """A person's close: a market sell of everything held, by the path the plan's exits take
        (the pair's rules as the exchange states them, the balance looked at when coins may be
        missing, a lost reply resolved by client order id). Whatever it recorded is saved.
        None: nothing sent (a shortfall is waiting for its next look). Raises AccountUnavailable
        when no account can carry the sell, InvalidTransition when an exit is in flight."""
        exchange = await self._account(position)
        rules = await self._rules(position, exchange, cause.at)
        decision = position.decide_manual_exit(
            price, requested_by, quantity_scale=rules.quantity_scale if rules is not None else None)
        outcome = await self._guarded_exit(position, decision, cause, exchange, rules)
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
        if position.pending_exit is not None and not await self._settle_pending(position, cause, exchange):
            await repository.save(self.store, position)
            return outcomes
        while position.status is not PositionStatus.CLOSED:
            decision = position.decide_exit(tick.price, cause.at, protective_only=protective_only)
            if decision is None:
                break
            rules = await self._rules(position, exchange, cause.at)
            if rules is not None:
                decision = position.decide_exit(
                    tick.price, cause.at, protective_only=protective_only, quantity_scale=rules.quantity_scale)
                if decision is None:
                    break
            elif decision.quantity != round_down_to_scale(decision.quantity, position.quantity_scale):
                self._wait_for_rules(position, decision)
                break
            outcome = await self._guarded_exit(position, decision, cause, exchange, rules)
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
        self._short.pop(position_id, None)
        self._balance_looked.discard(position_id)
        self._waiting_for_rules.discard(position_id)

    async def _account(self, position: Position) -> ExchangeTrading:
        if self.accounts is None:
            return self.exchange
        live = self._live.get(position.target_id)
        if live is None:
            target = await repository.get(self.store, SnipeTarget, target_stream(position.target_id))
            live = self._live[position.target_id] = target.live
        return await self.accounts.trading_for(position.user_id, live)

    async def _rules(self, position: Position, exchange: ExchangeTrading, now: datetime) -> SymbolRules | None:
        """The pair's rules as the exchange states them now, or None when they cannot be learnt
        (asked again after `_RULES_RETRY`). MexcExchange keeps them once loaded: no request per tick."""
        if position.symbol is None:
            raise _unopened(position)
        sources = [source for source in (_rules_of(exchange), self.market) if source is not None]
        if not sources:
            return None
        code = position.symbol.code
        retry_at = self._rules_retry_at.get(code)
        if retry_at is not None and now < retry_at:
            return None
        why: Exception | None = None
        for source in sources:
            try:
                rules = await source.symbol_rules(position.symbol)
            except AttributeError as exc:
                # A wrapper (telemetry) around an account that has no rules (the paper broker):
                # the market the paper fills follow can tell them.
                why = exc
                continue
            except (NotFound, ExchangeError) as exc:
                why = exc
                break
            self._rules_retry_at.pop(code, None)
            return rules
        self._rules_retry_at[code] = now + _RULES_RETRY
        _log.warning("rules of %s unknown (%s): exits round to the step recorded at the fill, write nothing off",
                     code, why)
        return None

    def _wait_for_rules(self, position: Position, decision: ExitDecision) -> None:
        """What is left is finer than the step recorded at the fill, which may be a guess: it is
        not sent (it could be refused for its precision) nor written off, until the pair's rules
        tell the real step. It stays open, in the book, at its cost."""
        if position.position_id in self._waiting_for_rules:
            return
        self._waiting_for_rules.add(position.position_id)
        if position.symbol is None:
            raise _unopened(position)
        _log.warning("position %s: %s %s left, finer than the step recorded (%d decimals) and the pair's rules are "
                     "unknown: kept open, not written off, until they are (%s exit waits)",
                     position.position_id, position.remaining, position.symbol.base, position.quantity_scale,
                     decision.reason.value)

    async def _guarded_exit(
        self, position: Position, decision: ExitDecision, cause: Cause, exchange: ExchangeTrading,
        rules: SymbolRules | None,
    ) -> ExitOutcome | None:
        """Send the exit, unless the account is known (or likely) to hold less than it sells.
        None: nothing to do before the next look at a shortfall."""
        if position.symbol is None:
            raise _unopened(position)
        pid = position.position_id
        short = self._short.get(pid)
        if short is not None and cause.at < short.next_look:
            return None
        balances = _balances_of(exchange)
        scale = _scale(position, rules)
        selling_all = decision.quantity >= position.sellable_within(position.remaining, scale)
        # A buy fee never learnt (myTrades failed, or more fills than its pages reach) may have
        # come out of the coin: the first all-out exit reads the balance instead of asking for
        # coins the account may not hold.
        unknown_fee = selling_all and not position.entry_fee_known and pid not in self._balance_looked
        if balances is None or (short is None and not unknown_fee):
            return await self._exit(position, decision, cause, exchange, rules)
        self._balance_looked.add(pid)
        try:
            free = await balances.free_balance(position.symbol.base)
        except ExchangeError as exc:
            if short is None:
                return await self._exit(position, decision, cause, exchange, rules)
            short.next_look = cause.at + _SHORTFALL_RECHECK
            return self._outcome(position, decision, False, f"the balance is unreadable ({exc}): will look again")
        if position.sellable_within(free, scale) >= position.sellable_within(position.remaining, scale):
            self._short.pop(pid, None)  # the account holds it all (again)
        if position.sellable_within(free, scale) >= decision.quantity:
            return await self._exit(position, decision, cause, exchange, rules)
        return await self._short_of_coin(position, decision, free, cause, exchange, rules)

    async def _exit(
        self, position: Position, decision: ExitDecision, cause: Cause, exchange: ExchangeTrading,
        rules: SymbolRules | None, write_off_rest: bool = False,
    ) -> ExitOutcome:
        """Sell for `decision`. With `write_off_rest`, the decision was cut to what the account
        holds, short by no more than a fee: once it fills in full, what the position holds beyond
        it is written off (only ever with the pair's rules known)."""
        if position.symbol is None:
            raise _unopened(position)
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
            return await self._after_refusal(position, decision, exc, cause, exchange, rules, write_off_rest)
        except ExchangeError as exc:
            position.record_exit_failure(str(exc), cause)  # rate limited, not yet open, clock skew: not placed
            return self._outcome(position, decision, False, str(exc))
        if not report.status.is_final:
            # Accepted, not done yet (MEXC's reply to an order carries no fill): ask once more,
            # else leave it pending; the next round asks again. Recording a failure here would
            # let a new exit sell the same shares while this one fills.
            with contextlib.suppress(ExchangeError):
                report = await exchange.query_order(position.symbol, coid) or report
            if not report.status.is_final:
                return self._outcome(position, decision, False, f"{report.status.value}, not done yet: will ask again")
        if report.executed_quantity <= 0:
            reason = "the exchange has no fill for the exit order"  # final with nothing executed
            position.record_exit_failure(reason, cause)
            return self._outcome(position, decision, False, reason)
        position.record_exit_fill(report.average_price, report.executed_quantity, report.fee, cause,
                                  quantity_scale=_step_of(rules))
        filled_in_full = report.executed_quantity == decision.quantity
        if write_off_rest and filled_in_full and position.status is not PositionStatus.CLOSED:
            position.write_off(
                f"not in the account: it held only {decision.quantity} {position.symbol.base} to sell", cause
            )
        return self._outcome(position, decision, True, "", report)

    async def _after_refusal(
        self, position: Position, decision: ExitDecision, refusal: OrderRefused, cause: Cause,
        exchange: ExchangeTrading, rules: SymbolRules | None, write_off_rest: bool,
    ) -> ExitOutcome:
        """A refused exit whose refusal would repeat on every tick: what is left is below the
        pair's minimum (written off), or the account holds less of the coin than the position
        says (see _short_of_coin)."""
        if position.symbol is None:
            raise _unopened(position)
        failed = self._outcome(position, decision, False, str(refusal))
        scale = _scale(position, rules)
        # Meant to sell everything left (a capped exit was, before it was cut to the balance).
        selling_all = write_off_rest or decision.quantity >= position.sellable_within(position.remaining, scale)
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
        if position.sellable_within(free, scale) >= decision.quantity:
            return failed  # the account holds enough: refused for another reason
        return await self._short_of_coin(position, decision, free, cause, exchange, rules)

    async def _short_of_coin(
        self, position: Position, decision: ExitDecision, free: Decimal, cause: Cause, exchange: ExchangeTrading,
        rules: SymbolRules | None,
    ) -> ExitOutcome:
        """The account holds `free` of the coin, less than `decision` sells. One balance read is
        enough to write off a fee's worth; never more than that (see the class doc)."""
        if position.symbol is None:
            raise _unopened(position)
        base, pid = position.symbol.base, position.position_id
        scale = _scale(position, rules)
        free = max(free, Decimal(0))
        sellable = position.sellable_within(free, scale)
        shortfall = position.remaining - free
        capped = replace(decision, quantity=sellable)
        holds = f"the account holds {free} {base} of the {position.remaining} held here"
        if shortfall <= _fee_allowance(position, rules):
            # What MEXC took from the coin as the buy fee, unseen, and dust.
            self._short.pop(pid, None)
            if rules is None:
                # The real step is unknown: sell what the recorded step allows, write nothing off.
                if sellable <= 0:
                    return self._outcome(position, decision, False,
                                         f"{holds}; the pair's rules are unknown: kept open, nothing written off")
                return await self._exit(position, capped, cause, exchange, rules)
            if sellable <= 0:
                reason = f"not in the account: {holds}"
                position.write_off(reason, cause)
                return self._outcome(position, decision, False, f"written off, {reason}")
            selling_all = decision.quantity >= position.sellable_within(position.remaining, scale)
            return await self._exit(position, capped, cause, exchange, rules, write_off_rest=selling_all)
        # More than a fee is missing: an earlier sell that filled unseen, or a balance not (yet)
        # right (a buy not credited yet). Never written off on that.
        late = await self._record_late_fills(position, cause, exchange, rules)
        if late is not None:
            self._short.pop(pid, None)
            return late
        short = self._short.get(pid)
        if short is None or cause.at - short.first_seen < _SHORTFALL_RECHECK:
            if short is None:
                short = self._short[pid] = _Shortfall(cause.at, cause.at + _SHORTFALL_RECHECK)
                _log.warning("position %s: %s; nothing written off, looking again in %s",
                             pid, holds, _SHORTFALL_RECHECK)
            return self._outcome(position, decision, False,
                                 f"{holds}: nothing written off, looking again at {short.next_look.isoformat()}")
        short.next_look = cause.at + _SHORTFALL_BACKOFF
        detail = (f"{holds}, twice {(cause.at - short.first_seen).total_seconds():g} s apart: {shortfall} {base} "
                  f"not found; kept open, not written off")
        if not short.alerted:
            short.alerted = True
            _log.error("position %s: %s", pid, detail)
            await self._alert(Alert(
                key=f"coins-missing:{pid}", severity=Severity.CRITICAL,
                title=f"position {pid}: {shortfall} {base} not in the account",
                text=(f"{detail}. No earlier exit of it shows filled. The exits sell what the account holds; "
                      f"look at the account and the position's orders: the position stays open until it is settled."),
                at=cause.at, user_id=position.user_id,
            ))
        if sellable <= 0:
            return self._outcome(position, decision, False, detail)
        sold = await self._exit(position, capped, cause, exchange, rules)
        return replace(sold, detail=f"{sold.detail}; {detail}" if sold.detail else detail)

    async def _record_late_fills(
        self, position: Position, cause: Cause, exchange: ExchangeTrading, rules: SymbolRules | None,
    ) -> ExitOutcome | None:
        """Ask for the position's exits recorded failed or missing (newest first): one the
        exchange shows filled after all (a lost reply, visible past the grace) is recorded as
        the fill it was. The outcome of the last one recorded, or None."""
        if position.symbol is None:
            raise _unopened(position)
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
                                           quantity_scale=_step_of(rules))
            self._settled = True
            _log.warning("position %s: exit %s, recorded failed, filled after all: %s at %s recorded",
                         position.position_id, coid, report.executed_quantity, report.average_price)
            found = ExitOutcome(position.position_id, submitted.reason, format(report.executed_quantity, "f"),
                                format(report.average_price, "f"), True,
                                f"exit {coid}, recorded failed, filled after all: recorded as its fill")
        return found

    async def _settle_pending(self, position: Position, cause: Cause, exchange: ExchangeTrading) -> bool:
        """An exit left pending (lost reply, crash) is resolved by its client order id
        before anything new is decided, so the same shares are never sold twice."""
        pending = position.pending_exit
        if pending is None or position.symbol is None:
            raise _unopened(position)
        try:
            report = await exchange.query_order(position.symbol, ClientOrderId(pending.client_order_id))
        except ExchangeError:
            return False
        if report is not None and not report.status.is_final:
            return False  # still working on the exchange
        if report is not None and report.executed_quantity > 0:
            self._missing_since.pop(pending.client_order_id, None)
            rules = await self._rules(position, exchange, cause.at)
            position.record_exit_fill(report.average_price, report.executed_quantity, report.fee, cause,
                                      quantity_scale=_step_of(rules))
            self._settled = True
            return True
        if report is None:
            # A fresh order may briefly be "not found": only after a grace is it called missing
            # (and the shares free to sell again). Should it show later after all, a shortfall
            # finds it (_record_late_fills).
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
        return ExitOutcome(position.position_id, decision.reason.value, format(qty, "f"), format(price, "f"), filled,
                           detail)


def _unopened(position: Position) -> RuntimeError:
    """Not reached: a position has its symbol (and, while exiting, its pending exit) once opened."""
    return RuntimeError(f"position {position.position_id} ({position.status.value}) is missing what opening sets")


def _scale(position: Position, rules: SymbolRules | None) -> int:
    """The step to round to: the exchange's when known, else the one recorded at the fill."""
    return rules.quantity_scale if rules is not None else position.quantity_scale


def _step_of(rules: SymbolRules | None) -> int | None:
    """The step below which a remainder may be written off: only ever the exchange's."""
    return rules.quantity_scale if rules is not None else None


def _fee_allowance(position: Position, rules: SymbolRules | None) -> Decimal:
    """How much of the coin may be missing from the account and written off on one balance read:
    the buy fee MEXC may have taken from it unseen, with slack, plus one step."""
    rate = rules.taker_fee if rules is not None else _DEFAULT_TAKER_FEE
    return position.quantity * rate * _FEE_SLACK + Decimal(1).scaleb(-_scale(position, rules))


def _balances_of(exchange: ExchangeTrading) -> AccountBalances | None:
    """The account's balances, when the exchange can tell. Looked up by attribute, not by a
    Protocol isinstance check: a wrapper (telemetry) passes `free_balance` through __getattr__,
    which isinstance does not see on every Python version (3.12 reads attributes statically)."""
    free_balance = getattr(exchange, "free_balance", None)
    return cast(AccountBalances, exchange) if callable(free_balance) else None


def _rules_of(exchange: ExchangeTrading) -> PairRules | None:
    """The pair's rules from the account the exit goes to, when it can tell (by attribute, as above)."""
    symbol_rules = getattr(exchange, "symbol_rules", None)
    return cast(PairRules, exchange) if callable(symbol_rules) else None


# --- a person's close ---------------------------------------------------------------------------

# How often a close is tried again when another process recorded on the position meanwhile.
_CLOSE_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class PositionClosure:
    """What a close by hand did. `position` is the position as it stands after it; `sold` and
    `price` are what closes by hand sold of it (quantity, average price; 0 and None: nothing);
    `already`: it was closing or closed before this call, and nothing was sent."""

    position: PositionView
    state: str  # "closed", "closing" (a sell is out, its outcome not known yet), or the position's status
    sold: Decimal
    price: Decimal | None
    realised_pnl: Decimal
    already: bool
    detail: str = ""


class PositionNotClosed(ApplicationError):
    """The close by hand sold nothing: the exchange refused it, or could not be asked. The
    position stays as it was; the message says why."""


class ClosePosition:
    """A person closes one of their positions by hand: a market sell of everything it holds,
    through the exit path of ManagePositions, recorded as their exit (ExitOrderSubmitted with
    reason "manual" and `requested_by`, then ManualExitFilled).

    Idempotent: a position closed already, or whose close is on its way (a sell out whose
    outcome is not known yet: it is asked for by client order id first), answers its state and
    sends nothing. Refused (EmergencyStopActive) while a person's emergency stop holds for the
    user, theirs or the global one: a person's stop holds every exit until a person clears it.
    A stop tripped by the safety monitor lets it through, as it lets the protective exits.
    Another user's position is as unknown as a missing one (NotFound).
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
