"""Exit strategies: the presets every trader has, and a trader's own (saved, replaced, deleted)."""

from __future__ import annotations

from dataclasses import dataclass

from application import repository
from application.errors import NotFound
from application.ports import Clock, EventStore
from application.use_cases.settings import load_trader
from domain.events import Cause
from domain.exit_plans import PRESETS, ExitPlan
from domain.trader import trader_stream


@dataclass(frozen=True, slots=True)
class ExitStrategy:
    plan: ExitPlan
    preset: bool
    default: bool


class ListExitStrategies:
    """The presets, then the trader's own plans by name; `default` marks the trader's choice."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def __call__(self, user_id: str) -> list[ExitStrategy]:
        trader = await load_trader(self.store, user_id)
        chosen = trader.preferences.exit_strategy
        found = [ExitStrategy(plan, True, name == chosen) for name, plan in PRESETS.items()]
        found += [ExitStrategy(trader.custom_plans[n], False, n == chosen) for n in sorted(trader.custom_plans)]
        return found


class GetExitStrategy:
    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def __call__(self, user_id: str, name: str) -> ExitStrategy:
        for strategy in await ListExitStrategies(self.store)(user_id):
            if strategy.plan.name == name:
                return strategy
        raise NotFound(f"no exit strategy named {name!r}")


class SaveExitStrategy:
    """Save a plan of the trader's own under its name (replacing one of that name)."""

    def __init__(self, store: EventStore, clock: Clock) -> None:
        self.store, self.clock = store, clock

    async def __call__(self, user_id: str, plan: ExitPlan) -> None:
        trader = await load_trader(self.store, user_id)
        trader.save_exit_strategy(plan, Cause(self.clock.now(), trader_stream(user_id)))
        await repository.save(self.store, trader)


class DeleteExitStrategy:
    def __init__(self, store: EventStore, clock: Clock) -> None:
        self.store, self.clock = store, clock

    async def __call__(self, user_id: str, name: str) -> None:
        trader = await load_trader(self.store, user_id)
        if name not in trader.custom_plans:
            raise NotFound(f"no exit strategy of yours is named {name!r}")
        trader.delete_exit_strategy(name, Cause(self.clock.now(), trader_stream(user_id)))
        await repository.save(self.store, trader)
