"""How often the REST fallback asks for the price of each open position's symbol.

The exchange's WebSocket pushes prices as they trade (PriceStreamAgent); the risk manager polls
REST for the symbols the stream leaves silent. In a listing's first minutes the price moves
several percent a second, so a young position's symbol is polled faster (`young_interval`,
default 200 ms for the first 3 minutes) than an older one's (`interval`, SNIPER_PRICE_POLL_MS).
A symbol the stream delivered a tick for within its interval is not polled at all.

The polls stay inside a request budget (`budget_per_second`, by default half of MEXC's 500
requests per 10 s for GET /api/v3/ticker/price, leaving the rest to everything else on that
endpoint): when the symbols' intervals ask for more, every interval is stretched by the same
factor. The plan is pure bookkeeping on the application's clock: tests drive it with a virtual one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from application.ports import Clock


@dataclass(frozen=True, slots=True)
class PollCadence:
    interval: timedelta = timedelta(seconds=1)
    young_interval: timedelta = timedelta(milliseconds=200)
    young_for: timedelta = timedelta(minutes=3)
    budget_per_second: float = 25.0

    def __post_init__(self) -> None:
        if self.interval <= timedelta(0) or self.young_interval <= timedelta(0) or self.budget_per_second <= 0:
            raise ValueError("poll intervals and the request budget must be positive")

    @property
    def round_every(self) -> timedelta:
        """How often the risk manager looks which symbols are due: half the shorter interval, so
        a round late by scheduling jitter does not make a symbol wait a whole interval more."""
        return min(self.interval, self.young_interval) / 2

    @property
    def early(self) -> timedelta:
        """How much before its interval is up a symbol counts as due (half a round)."""
        return self.round_every / 2

    def interval_for(self, opened_at: datetime | None, now: datetime) -> timedelta:
        """A symbol's own interval: the young one while its youngest open position is younger
        than `young_for` (a position of unknown age counts as old)."""
        if opened_at is not None and now - opened_at < self.young_for:
            return min(self.young_interval, self.interval)
        return self.interval


class PollPlan:
    """Which symbols are due for a REST price now. The risk manager calls `due` each round and
    `polled` for each symbol it asked about; the price stream calls `streamed` for each tick."""

    def __init__(self, clock: Clock, cadence: PollCadence = PollCadence()) -> None:
        self.clock, self.cadence = clock, cadence
        self._polled: dict[str, datetime] = {}
        self._streamed: dict[str, datetime] = {}

    def streamed(self, symbol: str) -> None:
        self._streamed[symbol] = self.clock.now()

    def polled(self, symbol: str) -> None:
        self._polled[symbol] = self.clock.now()

    def intervals(self, youngest: Mapping[str, datetime | None]) -> dict[str, timedelta]:
        """Each symbol's interval now, stretched alike when together they would exceed the budget.
        `youngest`: symbol -> when its youngest open position opened (None: unknown)."""
        now = self.clock.now()
        own = {code: self.cadence.interval_for(opened_at, now) for code, opened_at in youngest.items()}
        # A symbol may be asked for `early`: count it at that rate.
        demand = sum(1 / (i - self.cadence.early).total_seconds() for i in own.values())
        stretch = max(1.0, demand / self.cadence.budget_per_second)
        return {code: i * stretch for code, i in own.items()}

    def due(self, youngest: Mapping[str, datetime | None]) -> list[str]:
        """The symbols to poll now, sorted: never polled nor streamed, or not for their interval
        (less `early`). Forgets the symbols no longer asked about."""
        now = self.clock.now()
        for seen in (self._polled, self._streamed):
            for code in [c for c in seen if c not in youngest]:
                del seen[code]
        due = []
        for code, every in sorted(self.intervals(youngest).items()):
            last = max(filter(None, (self._polled.get(code), self._streamed.get(code))), default=None)
            if last is None or now - last >= every - self.cadence.early:
                due.append(code)
        return due
