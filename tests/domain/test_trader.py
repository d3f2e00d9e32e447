"""Trader: settings and own exit strategies, checked before anything is recorded."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from adapters.clock import SystemClock
from adapters.eventstore.memory import InMemoryEventStore
from adapters.memory import InMemoryTraderDirectory
from application.errors import NotFound
from application.ports import TraderSettings
from application.trader_directory import EventSourcedTraderDirectory
from application.use_cases.settings import ChangeTraderSettings
from domain.errors import InvalidValue, UnknownExitStrategy
from domain.events import Cause, ExitStrategySaved, Recorded
from domain.exit_plans import PRESETS, TakeProfitLevel
from domain.trader import ExitStrategyInUse, ReservedStrategyName, Trader, TradingPreferences

CAUSE = Cause(datetime(2025, 1, 1, tzinfo=UTC), "c")


def test_bad_settings_are_refused_and_nothing_is_recorded() -> None:
    trader = Trader.for_user("u")
    for wanted, words in (
        (TradingPreferences(quote_amount=Decimal("0")), "positive"),
        (TradingPreferences(quote_amount=Decimal("500")), "per-snipe limit"),
        (TradingPreferences(exit_strategy="nope"), "unknown exit strategy"),
        (TradingPreferences(only_tickers=("BAD TICKER",)), "not a ticker"),
    ):
        with pytest.raises((InvalidValue, UnknownExitStrategy), match=words):
            trader.change_settings(wanted, CAUSE)
    assert trader.pending == []


def test_own_strategies_cannot_take_preset_names_or_be_deleted_while_default() -> None:
    trader = Trader.for_user("u")
    with pytest.raises(ReservedStrategyName):
        trader.save_exit_strategy(PRESETS["balanced"], CAUSE)
    mine = replace(PRESETS["scalping"], name="mine")
    trader.save_exit_strategy(mine, CAUSE)
    trader.change_settings(TradingPreferences(exit_strategy="mine", only_tickers=("new",)), CAUSE)
    assert trader.preferences.only_tickers == ("NEW",)
    with pytest.raises(ExitStrategyInUse):
        trader.delete_exit_strategy("mine", CAUSE)
    again = Trader.rehydrate(trader.stream_id, trader.pending)
    assert again.custom_plans == {"mine": mine} and again.preferences.exit_strategy == "mine"


async def test_directory_serves_recorded_settings_and_falls_back_to_the_scenario() -> None:
    store = InMemoryEventStore()
    scenario = InMemoryTraderDirectory([TraderSettings("demo-user")])
    directory = EventSourcedTraderDirectory(store, fallback=scenario, defaults_for_unknown=False)
    assert [s.user_id for s in await directory.auto_snipers()] == ["demo-user"]
    await ChangeTraderSettings(store, SystemClock())("api-user", TradingPreferences(auto_snipe=True))
    assert sorted(s.user_id for s in await directory.auto_snipers()) == ["api-user", "demo-user"]
    assert (await directory.settings_for("api-user")).auto_snipe is True
    with pytest.raises(NotFound):
        await directory.settings_for("nobody")
    await ChangeTraderSettings(store, SystemClock())("api-user", TradingPreferences(auto_snipe=False))
    assert [s.user_id for s in await directory.auto_snipers()] == ["demo-user"]


def test_an_own_strategy_outside_the_bounds_is_refused_but_one_recorded_before_still_loads() -> None:
    trader = Trader.for_user("u")
    seven = replace(PRESETS["balanced"], name="ladder", take_profits=tuple(
        TakeProfitLevel(Decimal(g), Decimal("10")) for g in range(10, 80, 10)
    ))
    with pytest.raises(InvalidValue, match="exit plan 'ladder': 7 take-profit levels; give 1 to 5"):
        trader.save_exit_strategy(seven, CAUSE)
    assert trader.pending == []
    # A plan saved before the bounds existed is history: it folds as it was recorded.
    old = Recorded(trader.stream_id, 1, CAUSE.at, "u", "c", ExitStrategySaved(seven))
    assert Trader.rehydrate(trader.stream_id, [old]).custom_plans == {"ladder": seven}
