"""The read models as the API process serves them: answers kept in memory until the SQL
projections move on.

A portfolio read would otherwise cost three queries (positions, halt, checkpoint), each a few
round trips to the database driver; under load that is the whole budget. The projections only
change when their checkpoint moves, so answers are kept per (query, arguments) and dropped
when a watcher sees the checkpoint change (whoever moved it: this process after a write, the
worker, another API process) or when this process wrote. A reader may lag a write made by
another process by the watcher's interval, which the ReadModels port allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection
from datetime import date
from typing import Any

from application.ports import ReadModels
from application.views import DailyPnl, PositionView, TargetView, TradeRecord

log = logging.getLogger("sniper.http")

MAX_ENTRIES = 50_000


class CachedReadModels:
    """ReadModels over another, with answers kept until `invalidate()`."""

    def __init__(self, inner: ReadModels) -> None:
        self._inner = inner
        self._answers: dict[tuple[Any, ...], Any] = {}
        self._generation = 0
        self.checkpoint_seen: int | None = None

    def invalidate(self) -> None:
        self._answers.clear()
        self._generation += 1

    async def memo(self, key: tuple[Any, ...], load) -> Any:  # noqa: ANN001
        """Keep any answer built only from these read models (e.g. a rendered response) alike."""
        return await self._cached(("memo", *key), load)

    async def _cached(self, key: tuple[Any, ...], load) -> Any:  # noqa: ANN001
        try:
            return self._answers[key]
        except KeyError:
            pass
        generation = self._generation
        answer = await load()
        if generation == self._generation:  # not invalidated while we read: safe to keep
            if len(self._answers) >= MAX_ENTRIES:
                self._answers.clear()
            self._answers[key] = answer
        return answer

    # Views are dataclasses the handlers only read; they are shared between readers.
    async def positions(self, user_id: str, open_only: bool = False) -> list[PositionView]:
        return await self._cached(("positions", user_id, open_only), lambda: self._inner.positions(user_id, open_only))

    async def targets(self, user_id: str, statuses: Collection[str] | None = None) -> list[TargetView]:
        key = ("targets", user_id, frozenset(statuses) if statuses is not None else None)
        return await self._cached(key, lambda: self._inner.targets(user_id, statuses))

    async def daily_pnl(self, user_id: str, day_from: date, day_to: date) -> list[DailyPnl]:
        return await self._cached(("daily_pnl", user_id, day_from, day_to),
                                  lambda: self._inner.daily_pnl(user_id, day_from, day_to))

    async def trade_history(
        self, user_id: str, limit: int = 100, before_position: int | None = None,
    ) -> list[TradeRecord]:
        return await self._cached(("trades", user_id, limit, before_position),
                                  lambda: self._inner.trade_history(user_id, limit, before_position))

    async def halted(self, user_id: str) -> str | None:
        return await self._cached(("halted", user_id), lambda: self._inner.halted(user_id))

    async def checkpoint(self) -> int:
        return await self._cached(("checkpoint",), self._inner.checkpoint)

    async def watch(self, stop: asyncio.Event, interval: float = 0.25) -> None:
        """Drop every kept answer when the projections' checkpoint moves."""
        while not stop.is_set():
            try:
                current = await self._inner.checkpoint()
                if current != self.checkpoint_seen:
                    self.checkpoint_seen = current
                    self.invalidate()
            except Exception as exc:  # noqa: BLE001 - keep watching; readiness reports the database
                log.warning("read model watcher: %r", exc)
                self.invalidate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
