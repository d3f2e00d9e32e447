"""Routing orders to accounts: paper targets to paper fills, live targets to the live account."""

from __future__ import annotations

from application.errors import AccountUnavailable
from application.ports import ExchangeTrading


class PaperOrLive:
    """Paper targets fill on `paper`; live targets go to `live`, or are refused when this
    process trades on paper only (no live account given)."""

    def __init__(self, paper: ExchangeTrading, live: ExchangeTrading | None = None) -> None:
        self.paper, self.live = paper, live

    async def trading_for(self, user_id: str, live: bool) -> ExchangeTrading:
        if not live:
            return self.paper
        if self.live is None:
            raise AccountUnavailable("live trading is not enabled on this worker (paper only): no real order placed")
        return self.live


class OneAccount:
    """Every order to one exchange: tests and single-account tools that chose it on purpose."""

    def __init__(self, exchange: ExchangeTrading) -> None:
        self.exchange = exchange

    async def trading_for(self, user_id: str, live: bool) -> ExchangeTrading:
        return self.exchange
