"""A pair's trading rules as a worker last read them from the exchange, shared through the
cache (Redis with REDIS_URL) with the processes that hold no exchange session: the API judges a
new or amended target's minimum order value with them.

A worker records the rules each time it reads them (`RecordingMarketData`: a snipe's
preparation, a manual `sniper snipe`, an exit's rounding). What the cache does not hold, or cannot
say (no shared cache, Redis unreachable, an entry from another version), is unknown: the check
that needs it is left to the executor before the send, which reads the exchange itself.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from application.errors import NotFound
from application.ports import Cache, MarketData, SymbolRules
from domain.values import Symbol

logger = logging.getLogger(__name__)

# Rules change seldom (MEXC announces a new minimum); a day-old entry is still the best guess,
# and the executor checks against the exchange's own answer before the send anyway.
PAIR_RULES_TTL = timedelta(days=1)


def _key(symbol: Symbol) -> str:
    return f"pair-rules:{symbol.code}"


class SharedPairRules:
    """The PairRules port on the cache: what a worker recorded; NotFound when nothing is known."""

    def __init__(self, cache: Cache, ttl: timedelta = PAIR_RULES_TTL) -> None:
        self.cache, self.ttl = cache, ttl

    async def record(self, rules: SymbolRules) -> None:
        value = {"price_scale": rules.price_scale, "quantity_scale": rules.quantity_scale,
                 "min_notional": str(rules.min_notional), "taker_fee": str(rules.taker_fee)}
        await self.cache.set(_key(rules.symbol), json.dumps(value).encode(), self.ttl)

    async def symbol_rules(self, symbol: Symbol) -> SymbolRules:
        try:
            raw = await self.cache.get(_key(symbol))
        except Exception as exc:  # noqa: BLE001 - an unreachable cache knows nothing: the launch checks
            logger.warning("pair rules of %s unknown: the cache did not answer (%s)", symbol.code, exc)
            raise NotFound(f"no known rules for {symbol.code}") from exc
        if raw is None:
            raise NotFound(f"no known rules for {symbol.code}")
        try:
            value = json.loads(raw)
            return SymbolRules(symbol, int(value["price_scale"]), int(value["quantity_scale"]),
                               Decimal(value["min_notional"]), Decimal(value["taker_fee"]))
        except (ValueError, KeyError, TypeError, InvalidOperation) as exc:
            raise NotFound(f"the recorded rules of {symbol.code} are unreadable") from exc


class RecordingMarketData:
    """MarketData that records every pair's rules it reads into SharedPairRules (a failed record
    is logged, never the caller's failure)."""

    def __init__(self, inner: MarketData, shared: SharedPairRules) -> None:
        self.inner, self.shared = inner, shared

    async def symbol_rules(self, symbol: Symbol) -> SymbolRules:
        rules = await self.inner.symbol_rules(symbol)
        try:
            await self.shared.record(rules)
        except Exception as exc:  # noqa: BLE001 - sharing is a help to the API, not part of the read
            logger.warning("pair rules of %s not shared: %s", symbol.code, exc)
        return rules

    async def last_price(self, symbol: Symbol) -> Decimal | None:
        return await self.inner.last_price(symbol)
