"""The trader directory built from the traders' recorded settings (streams `trader-<user id>`):
users who turned auto-snipe on through the API are the ones the strategy agent serves."""

from __future__ import annotations

import asyncio

from application.errors import NotFound
from application.ports import EventStore, TraderDirectory, TraderSettings
from application.use_cases.settings import load_trader, settings_of
from domain.events import ExitStrategyDeleted, ExitStrategySaved, TraderSettingsChanged
from domain.trader import Trader


class EventSourcedTraderDirectory:
    """TraderDirectory over the event store.

    `auto_snipers` follows the store by global position (only trader events are folded), so
    each call reads just what was recorded since the last. `settings_for` loads the user's
    own stream, so it is never behind. A user with no recorded settings is looked up in
    `fallback` (e.g. the demo scenario's traders); without one, they get the defaults
    (auto-snipe off) when `defaults_for_unknown`, else NotFound.
    """

    def __init__(
        self, store: EventStore, fallback: TraderDirectory | None = None, defaults_for_unknown: bool = True
    ) -> None:
        self._store = store
        self._fallback = fallback
        self._defaults_for_unknown = defaults_for_unknown
        self._position = 0
        self._traders: dict[str, Trader] = {}
        self._lock = asyncio.Lock()

    async def _catch_up(self, batch: int = 1000) -> None:
        async with self._lock:
            while True:
                chunk = await self._store.read_all(after=self._position, limit=batch)
                for rec in chunk:
                    self._position = max(self._position, rec.position or 0)
                    if isinstance(rec.event, (TraderSettingsChanged, ExitStrategySaved, ExitStrategyDeleted)):
                        trader = self._traders.get(rec.user_id)
                        if trader is None:
                            trader = self._traders[rec.user_id] = Trader.for_user(rec.user_id)
                        trader.replay(rec.event)
                if len(chunk) < batch:
                    return

    async def auto_snipers(self) -> list[TraderSettings]:
        await self._catch_up()
        recorded = {uid: settings_of(t) for uid, t in self._traders.items() if t.configured}
        found = [s for s in recorded.values() if s.auto_snipe]
        if self._fallback is not None:
            found += [s for s in await self._fallback.auto_snipers() if s.user_id not in recorded]
        return found

    async def settings_for(self, user_id: str) -> TraderSettings:
        trader = await load_trader(self._store, user_id)
        if trader.version > 0 and (trader.configured or self._fallback is None):
            return settings_of(trader)
        if self._fallback is not None:
            try:
                return await self._fallback.settings_for(user_id)
            except NotFound:
                pass
        if trader.version > 0 or self._defaults_for_unknown:
            return settings_of(trader)
        raise NotFound(f"unknown user: {user_id}")
