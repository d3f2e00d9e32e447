"""The emergency stop as the executor reads it: before the launch, and between resends."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from application.ports import Clock, EventStore
from application.trade_book import TradeBook
from application.use_cases.snipe.run import Run
from domain.target import SnipeTarget

_log = logging.getLogger(__name__)

# A stop read this recently is still the answer when the store cannot be reached at the check just
# before the launch: a store or Redis hiccup in the last seconds must not cost the snipe.
HALT_READ_MAX_AGE = timedelta(seconds=5)
# That check gives up on the store after this long: a hanging read must not hold the order back.
HALT_READ_TIMEOUT = timedelta(milliseconds=500)


class EmergencyStop:
    def __init__(self, store: EventStore, book: TradeBook, clock: Clock) -> None:
        self.store, self.book, self.clock = store, book, clock

    async def halted(self, user_id: str) -> str | None:
        await self.book.catch_up(self.store)
        return self.book.halted(user_id)

    async def read(self, target: SnipeTarget, run: Run) -> str | None:
        """A read that succeeded is kept in `run`: `at_launch` may fall back on it."""
        read_at = self.clock.now()
        halted = await self.halted(target.user_id)
        run.halt_read_at, run.halt_state = read_at, halted
        return halted

    async def at_launch(self, target: SnipeTarget, run: Run) -> str | None:
        """The stop as read just before the launch. When the store cannot answer in time, the last read
        that succeeded is the answer if less than `HALT_READ_MAX_AGE` old (a stop pressed since is seen
        between resends and still cancels what is open); with none that recent, nothing is sent."""
        try:
            return await asyncio.wait_for(self.read(target, run), HALT_READ_TIMEOUT.total_seconds())
        except Exception as exc:  # the store's own errors, or no answer in time
            age = None if run.halt_read_at is None else self.clock.now() - run.halt_read_at
            if age is None or age > HALT_READ_MAX_AGE:
                raise
            run.halt_read_age = age
            _log.warning(
                "snipe %s: the store could not be reached for the emergency stop before the launch (%s: %s); "
                "taking the read %d ms old (no stop then)", target.target_id, type(exc).__name__, exc,
                age // timedelta(milliseconds=1),
            )
            return run.halt_state


def with_halt_note(detail: str, run: Run) -> str:
    if run.halt_read_age is None:
        return detail
    return f"{detail} (emergency stop taken from a read {run.halt_read_age // timedelta(milliseconds=1)} ms old: " \
           "the store could not be reached before the launch)"
