"""The pair rules a worker reads from the exchange, shared through the cache with the API."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from application.errors import NotFound
from application.pair_rules import PAIR_RULES_TTL, RecordingMarketData, SharedPairRules
from application.ports import SymbolRules
from domain.values import Symbol

NEW = Symbol("NEW", "USDT")
RULES = SymbolRules(NEW, 8, 0, Decimal("5"), Decimal("0.001"))


class DictCache:
    def __init__(self) -> None:
        self.values: dict[str, tuple[bytes, timedelta | None]] = {}

    async def get(self, key: str) -> bytes | None:
        entry = self.values.get(key)
        return None if entry is None else entry[0]

    async def set(self, key: str, value: bytes, ttl: timedelta | None = None) -> None:
        self.values[key] = (value, ttl)

    async def delete(self, key: str) -> None:
        self.values.pop(key, None)


class BrokenCache(DictCache):
    async def get(self, key: str) -> bytes | None:
        raise ConnectionError("Redis unreachable")

    async def set(self, key: str, value: bytes, ttl: timedelta | None = None) -> None:
        raise ConnectionError("Redis unreachable")


class Market:
    def __init__(self) -> None:
        self.asked: list[Symbol] = []

    async def symbol_rules(self, symbol: Symbol) -> SymbolRules:
        self.asked.append(symbol)
        return RULES

    async def last_price(self, symbol: Symbol) -> Decimal | None:
        return Decimal("0.5")


async def test_rules_a_worker_read_are_known_to_another_reader_of_the_cache() -> None:
    cache, market = DictCache(), Market()
    recording = RecordingMarketData(market, SharedPairRules(cache))
    assert await recording.symbol_rules(NEW) == RULES
    assert await recording.last_price(NEW) == Decimal("0.5")
    assert await SharedPairRules(cache).symbol_rules(NEW) == RULES
    assert [ttl for _, ttl in cache.values.values()] == [PAIR_RULES_TTL]


async def test_rules_nobody_read_or_the_cache_cannot_tell_are_unknown() -> None:
    with pytest.raises(NotFound):
        await SharedPairRules(DictCache()).symbol_rules(NEW)
    with pytest.raises(NotFound):
        await SharedPairRules(BrokenCache()).symbol_rules(NEW)
    garbled = DictCache()
    await garbled.set("pair-rules:NEWUSDT", b'{"price_scale": "x"}')
    with pytest.raises(NotFound):
        await SharedPairRules(garbled).symbol_rules(NEW)


async def test_a_cache_that_cannot_record_does_not_fail_the_read() -> None:
    recording = RecordingMarketData(Market(), SharedPairRules(BrokenCache()))
    assert await recording.symbol_rules(NEW) == RULES
