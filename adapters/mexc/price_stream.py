"""PriceStream over MexcMarketStream: follow the symbols that hold positions, drain their ticks."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from datetime import timedelta

from adapters.mexc.streams import MexcMarketStream
from application.ports import PriceTick
from domain.values import Symbol


class MexcPriceStream:
    def __init__(self, stream: MexcMarketStream, max_drain: int = 10_000) -> None:
        self.stream = stream
        self.max_drain = max_drain

    async def follow(self, symbols: Collection[Symbol]) -> None:
        wanted = {s.code: s for s in symbols}
        current = {s.code: s for s in self.stream.symbols}
        for code in sorted(current.keys() - wanted.keys()):
            await self.stream.remove_symbol(current[code])
        for code in sorted(wanted.keys() - current.keys()):
            await self.stream.add_symbol(wanted[code])

    async def drain(self, wait: timedelta) -> list[PriceTick]:
        queue = self.stream.ticks
        ticks: list[PriceTick] = []
        if queue.empty():
            try:
                ticks.append(await asyncio.wait_for(queue.get(), max(wait.total_seconds(), 0.0)))
            except TimeoutError:
                return ticks
        while not queue.empty() and len(ticks) < self.max_drain:
            ticks.append(queue.get_nowait())
        return ticks
