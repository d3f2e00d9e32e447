"""Placing an exit, and what follows when the account holds less of the coin than the position.

Missing no more than the buy fee MEXC may have taken from the coin unseen, plus one step: what the
account holds is sold and the rest written off (DustWrittenOff). Missing more is never written off:
it may be an earlier exit that filled unseen, or a balance not credited yet; a person is alerted.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import cast

from application import repository
from application.alerts import Alert, Severity
from application.errors import AmbiguousOutcome, ExchangeError, OrderAlreadyExists, OrderRefused
from application.ports import AccountBalances, EventStore, ExchangeTrading, OrderReport, SymbolRules
from application.use_cases.positions.outcome import ExitOutcome, outcome, unopened
from application.use_cases.positions.rules import scale, step_of
from application.use_cases.positions.settle import Settlement
from domain.events import Cause
from domain.position import ExitDecision, Position, PositionStatus

_log = logging.getLogger(__name__)

# Refusals saying the account holds less of the coin than the exit asked to sell (FACTS.md).
_SHORT_OF_COIN = frozenset({"10101", "30004", "30005"})
# Below the pair's minimum quantity or order value (MEXC's code, and this adapter's local refusal).
_BELOW_MINIMUM = "30002"
# More than a fee missing is looked at again this much later before anything is concluded...
_SHORTFALL_RECHECK = timedelta(seconds=5)
# ...and then again this often, while it lasts.
_SHORTFALL_BACKOFF = timedelta(seconds=60)
# The buy fee taken from the coin may be up to this many times the pair's taker fee.
_FEE_SLACK = Decimal(2)
_DEFAULT_TAKER_FEE = Decimal("0.0005")


@dataclass(slots=True)
class _Shortfall:
    """A position whose account held less of the coin than it says, by more than a fee."""

    first_seen: datetime
    next_look: datetime
    alerted: bool = False


class ExitOrders:
    def __init__(
        self, store: EventStore, settlement: Settlement, alert: Callable[[Alert], Awaitable[None]],
    ) -> None:
        self.store, self.settlement, self.alert = store, settlement, alert
        self._short: dict[str, _Shortfall] = {}  # position id -> coins found missing
        self._balance_looked: set[str] = set()  # positions with an unknown buy fee whose balance was read

    def forget(self, position_id: str) -> None:
        self._short.pop(position_id, None)
        self._balance_looked.discard(position_id)

    async def send(
        self, position: Position, decision: ExitDecision, cause: Cause, exchange: ExchangeTrading,
        rules: SymbolRules | None,
    ) -> ExitOutcome | None:
        """Send the exit, unless the account is known (or likely) to hold less than it sells.
        None: nothing to do before the next look at a shortfall."""
        if position.symbol is None:
            raise unopened(position)
        pid = position.position_id
        short = self._short.get(pid)
        if short is not None and cause.at < short.next_look:
            return None
        balances = _balances_of(exchange)
        step = scale(position, rules)
        selling_all = decision.quantity >= position.sellable_within(position.remaining, step)
        # A buy fee never learnt (myTrades failed, or more fills than its pages reach) may have
        # come out of the coin: the first all-out exit reads the balance instead of asking for
        # coins the account may not hold.
        unknown_fee = selling_all and not position.entry_fee_known and pid not in self._balance_looked
        if balances is None or (short is None and not unknown_fee):
            return await self._place(position, decision, cause, exchange, rules)
        self._balance_looked.add(pid)
        try:
            free = await balances.free_balance(position.symbol.base)
        except ExchangeError as exc:
            if short is None:
                return await self._place(position, decision, cause, exchange, rules)
            short.next_look = cause.at + _SHORTFALL_RECHECK
            return outcome(position, decision, False, f"the balance is unreadable ({exc}): will look again")
        if position.sellable_within(free, step) >= position.sellable_within(position.remaining, step):
            self._short.pop(pid, None)  # the account holds it all (again)
        if position.sellable_within(free, step) >= decision.quantity:
            return await self._place(position, decision, cause, exchange, rules)
        return await self._short_of_coin(position, decision, free, cause, exchange, rules)

    async def _place(
        self, position: Position, decision: ExitDecision, cause: Cause, exchange: ExchangeTrading,
        rules: SymbolRules | None, write_off_rest: bool = False,
    ) -> ExitOutcome:
        """Sell for `decision`. `write_off_rest`: the decision was cut to what the account holds,
        short by no more than a fee, so once it fills in full the rest is written off."""
        if position.symbol is None:
            raise unopened(position)
        coid = position.submit_exit(decision, cause)
        # Recorded before the send, like the snipe: a crash leaves a trace to reconcile.
        await repository.save(self.store, position)
        report: OrderReport
        try:
            report = await exchange.place_market_sell(position.symbol, decision.quantity, coid)
        except (AmbiguousOutcome, OrderAlreadyExists) as unclear:
            # The sell may be on the exchange: only its client order id can tell, and a just-placed
            # order may answer "not found" for a moment (FACTS.md). So it stays pending: failing it
            # now would let the next tick sell the same coins again under a new client order id.
            self.settlement.unclear(coid.value, cause.at)
            try:
                found = await exchange.query_order(position.symbol, coid)
            except ExchangeError as exc:
                return outcome(position, decision, False, f"unresolved, will ask again: {exc}")
            if found is None:
                return outcome(position, decision, False, f"not visible yet after '{unclear}': will ask again")
            self.settlement.seen(coid.value)
            report = found
        except OrderRefused as exc:
            position.record_exit_failure(str(exc), cause)  # a final refusal: nothing was placed
            return await self._after_refusal(position, decision, exc, cause, exchange, rules, write_off_rest)
        except ExchangeError as exc:
            position.record_exit_failure(str(exc), cause)  # rate limited, not yet open, clock skew: not placed
            return outcome(position, decision, False, str(exc))
        if not report.status.is_final:
            # Accepted, not done yet (MEXC's reply to an order carries no fill): ask once more,
            # else leave it pending. Recording a failure would let a new exit sell the same coins.
            with contextlib.suppress(ExchangeError):
                report = await exchange.query_order(position.symbol, coid) or report
            if not report.status.is_final:
                return outcome(position, decision, False, f"{report.status.value}, not done yet: will ask again")
        if report.executed_quantity <= 0:
            reason = "the exchange has no fill for the exit order"  # final with nothing executed
            position.record_exit_failure(reason, cause)
            return outcome(position, decision, False, reason)
        position.record_exit_fill(report.average_price, report.executed_quantity, report.fee, cause,
                                  quantity_scale=step_of(rules))
        filled_in_full = report.executed_quantity == decision.quantity
        if write_off_rest and filled_in_full and position.status is not PositionStatus.CLOSED:
            position.write_off(
                f"not in the account: it held only {decision.quantity} {position.symbol.base} to sell", cause
            )
        return outcome(position, decision, True, "", report)

    async def _after_refusal(
        self, position: Position, decision: ExitDecision, refusal: OrderRefused, cause: Cause,
        exchange: ExchangeTrading, rules: SymbolRules | None, write_off_rest: bool,
    ) -> ExitOutcome:
        """A refusal that would repeat on every tick: a remainder below the pair's minimum (written
        off), or an account holding less of the coin than the position."""
        if position.symbol is None:
            raise unopened(position)
        failed = outcome(position, decision, False, str(refusal))
        step = scale(position, rules)
        # Meant to sell everything left (a capped exit was, before it was cut to the balance).
        selling_all = write_off_rest or decision.quantity >= position.sellable_within(position.remaining, step)
        if refusal.code == _BELOW_MINIMUM and selling_all and (
            write_off_rest or position.status is PositionStatus.PARTIALLY_EXITED
        ):
            reason = f"dust: {position.remaining} {position.symbol.base} is below the pair's minimum ({refusal})"
            position.write_off(reason, cause)
            return outcome(position, decision, False, f"written off, {reason}")
        balances = _balances_of(exchange)
        if refusal.code not in _SHORT_OF_COIN or balances is None:
            return failed
        try:
            free = await balances.free_balance(position.symbol.base)
        except ExchangeError:
            return failed  # the next tick tries again
        if position.sellable_within(free, step) >= decision.quantity:
            return failed  # the account holds enough: refused for another reason
        return await self._short_of_coin(position, decision, free, cause, exchange, rules)

    async def _short_of_coin(
        self, position: Position, decision: ExitDecision, free: Decimal, cause: Cause, exchange: ExchangeTrading,
        rules: SymbolRules | None,
    ) -> ExitOutcome:
        """The account holds `free` of the coin, less than `decision` sells. One balance read may
        write off a fee's worth, never more (see the module doc)."""
        if position.symbol is None:
            raise unopened(position)
        base, pid = position.symbol.base, position.position_id
        step = scale(position, rules)
        free = max(free, Decimal(0))
        sellable = position.sellable_within(free, step)
        shortfall = position.remaining - free
        capped = replace(decision, quantity=sellable)
        holds = f"the account holds {free} {base} of the {position.remaining} held here"
        if shortfall <= _fee_allowance(position, rules):
            # What MEXC took from the coin as the buy fee, unseen, and dust.
            self._short.pop(pid, None)
            if rules is None:
                # The real step is unknown: sell what the recorded step allows, write nothing off.
                if sellable <= 0:
                    return outcome(position, decision, False,
                                   f"{holds}; the pair's rules are unknown: kept open, nothing written off")
                return await self._place(position, capped, cause, exchange, rules)
            if sellable <= 0:
                reason = f"not in the account: {holds}"
                position.write_off(reason, cause)
                return outcome(position, decision, False, f"written off, {reason}")
            selling_all = decision.quantity >= position.sellable_within(position.remaining, step)
            return await self._place(position, capped, cause, exchange, rules, write_off_rest=selling_all)
        # More than a fee missing: an earlier exit that filled unseen, or a balance not credited yet.
        late = await self.settlement.late_fills(position, cause, exchange, rules)
        if late is not None:
            self._short.pop(pid, None)
            return late
        short = self._short.get(pid)
        if short is None or cause.at - short.first_seen < _SHORTFALL_RECHECK:
            if short is None:
                short = self._short[pid] = _Shortfall(cause.at, cause.at + _SHORTFALL_RECHECK)
                _log.warning("position %s: %s; nothing written off, looking again in %s",
                             pid, holds, _SHORTFALL_RECHECK)
            return outcome(position, decision, False,
                           f"{holds}: nothing written off, looking again at {short.next_look.isoformat()}")
        short.next_look = cause.at + _SHORTFALL_BACKOFF
        detail = (f"{holds}, twice {(cause.at - short.first_seen).total_seconds():g} s apart: {shortfall} {base} "
                  f"not found; kept open, not written off")
        if not short.alerted:
            short.alerted = True
            _log.error("position %s: %s", pid, detail)
            await self.alert(Alert(
                key=f"coins-missing:{pid}", severity=Severity.CRITICAL,
                title=f"position {pid}: {shortfall} {base} not in the account",
                text=(f"{detail}. No earlier exit of it shows filled. The exits sell what the account holds; "
                      f"look at the account and the position's orders: the position stays open until it is settled."),
                at=cause.at, user_id=position.user_id,
            ))
        if sellable <= 0:
            return outcome(position, decision, False, detail)
        sold = await self._place(position, capped, cause, exchange, rules)
        return replace(sold, detail=f"{sold.detail}; {detail}" if sold.detail else detail)


def _fee_allowance(position: Position, rules: SymbolRules | None) -> Decimal:
    """What may be missing from the account and written off on one balance read: the buy fee
    MEXC may have taken from the coin unseen, with slack, plus one step."""
    rate = rules.taker_fee if rules is not None else _DEFAULT_TAKER_FEE
    return position.quantity * rate * _FEE_SLACK + Decimal(1).scaleb(-scale(position, rules))


def _balances_of(exchange: ExchangeTrading) -> AccountBalances | None:
    """By attribute, not a Protocol isinstance check: a wrapper (telemetry) passes `free_balance`
    through __getattr__, which isinstance does not see on every Python version."""
    free_balance = getattr(exchange, "free_balance", None)
    return cast(AccountBalances, exchange) if callable(free_balance) else None
