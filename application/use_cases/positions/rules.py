"""The pair's rules an exit rounds to. Only the exchange's step counts: the one recorded at the
fill may be a guess, and nothing is ever written off on a guess."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import cast

from application.errors import ExchangeError, NotFound
from application.ports import ExchangeTrading, PairRules, SymbolRules
from application.use_cases.positions.outcome import unopened
from domain.position import ExitDecision, Position

_log = logging.getLogger(__name__)

# After the pair's rules could not be learnt, how long before asking again.
_RULES_RETRY = timedelta(seconds=30)


class PairRulesLookup:
    """Asked before each sell (MexcExchange keeps the rules once loaded: no request per tick)."""

    def __init__(self, market: PairRules | None) -> None:
        # The pairs' rules when the account an exit goes to cannot tell them (the paper broker).
        self.market = market
        self._retry_at: dict[str, datetime] = {}  # symbol -> when to ask for its rules again
        self._waiting: set[str] = set()  # positions holding a remainder finer than the known step

    async def lookup(self, position: Position, exchange: ExchangeTrading, now: datetime) -> SymbolRules | None:
        """None when they cannot be learnt: exits then round to the recorded step and write nothing off."""
        if position.symbol is None:
            raise unopened(position)
        sources = [source for source in (_rules_of(exchange), self.market) if source is not None]
        if not sources:
            return None
        code = position.symbol.code
        retry_at = self._retry_at.get(code)
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
            self._retry_at.pop(code, None)
            return rules
        self._retry_at[code] = now + _RULES_RETRY
        _log.warning("rules of %s unknown (%s): exits round to the step recorded at the fill, write nothing off",
                     code, why)
        return None

    def wait(self, position: Position, decision: ExitDecision) -> None:
        """A remainder finer than the recorded step is neither sent (its precision could be refused)
        nor written off: it stays open, at its cost, until the rules tell the real step."""
        if position.position_id in self._waiting:
            return
        self._waiting.add(position.position_id)
        if position.symbol is None:
            raise unopened(position)
        _log.warning("position %s: %s %s left, finer than the step recorded (%d decimals) and the pair's rules are "
                     "unknown: kept open, not written off, until they are (%s exit waits)",
                     position.position_id, position.remaining, position.symbol.base, position.quantity_scale,
                     decision.reason.value)

    def forget(self, position_id: str) -> None:
        self._waiting.discard(position_id)


def scale(position: Position, rules: SymbolRules | None) -> int:
    """The step to round to: the exchange's when known, else the one recorded at the fill."""
    return rules.quantity_scale if rules is not None else position.quantity_scale


def step_of(rules: SymbolRules | None) -> int | None:
    """The step below which a remainder may be written off: only ever the exchange's."""
    return rules.quantity_scale if rules is not None else None


def _rules_of(exchange: ExchangeTrading) -> PairRules | None:
    """By attribute, not isinstance: see exits._balances_of."""
    symbol_rules = getattr(exchange, "symbol_rules", None)
    return cast(PairRules, exchange) if callable(symbol_rules) else None
