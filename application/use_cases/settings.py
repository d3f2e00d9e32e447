"""A trader's settings and risk profile: read them, change them (checked by the domain)."""

from __future__ import annotations

from application import repository
from application.ports import Clock, EventStore, TraderSettings
from domain.events import Cause
from domain.trader import Trader, TradingPreferences, trader_stream


async def load_trader(store: EventStore, user_id: str) -> Trader:
    """The user's trader, or a fresh one with the default preferences."""
    found = await repository.find(store, Trader, trader_stream(user_id))
    return found if found is not None else Trader.for_user(user_id)


def settings_of(trader: Trader) -> TraderSettings:
    """What the sniper acts on, from a trader's recorded preferences and plans."""
    p = trader.preferences
    return TraderSettings(
        user_id=trader.user_id,
        auto_snipe=p.auto_snipe,
        quote_amount=p.quote_amount,
        quote_asset=p.quote_asset,
        exit_strategy=p.exit_strategy,
        custom_exit_plans=dict(trader.custom_plans),
        risk=p.risk,
        min_confidence=p.min_confidence,
        only_tickers=frozenset(p.only_tickers),
        skip_tickers=frozenset(p.skip_tickers),
        max_entry_price=p.max_entry_price,
    )


class GetTraderSettings:
    """A user's settings; a user who never changed them gets the defaults (auto-snipe off)."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def __call__(self, user_id: str) -> TradingPreferences:
        return (await load_trader(self.store, user_id)).preferences


class ChangeTraderSettings:
    """Replace a user's settings and risk profile as a whole. Bad values raise a domain error
    naming the value; nothing is recorded then."""

    def __init__(self, store: EventStore, clock: Clock) -> None:
        self.store, self.clock = store, clock

    async def __call__(self, user_id: str, wanted: TradingPreferences) -> TradingPreferences:
        trader = await load_trader(self.store, user_id)
        stored = trader.change_settings(wanted, Cause(self.clock.now(), trader_stream(user_id)))
        await repository.save(self.store, trader)
        return stored
