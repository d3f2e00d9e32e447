"""The REST fallback's cadence (application/price_polling.py and the risk manager that follows it),
on a virtual clock: a young position's symbol is polled every 200 ms, an older one's every second,
a symbol the WebSocket keeps fresh not at all, and all of them inside the request budget."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from adapters.clock import ManualClock
from adapters.eventstore.memory import InMemoryEventStore
from adapters.memory import InMemoryTraderDirectory
from application import repository
from application.agents import PriceStreamAgent, RiskManagerAgent
from application.ports import PriceTick
from application.price_polling import PollCadence, PollPlan
from application.trade_book import TradeBook
from domain.events import Cause
from domain.exit_plans import PRESETS
from domain.position import Position
from domain.values import Symbol

T0 = datetime(2030, 1, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)


def run_rounds(
    plan: PollPlan, clock: ManualClock, youngest: dict[str, datetime | None], seconds: float,
) -> Counter[str]:
    """Rounds every `round_every` for `seconds`, polling what is due; how often each symbol was polled."""
    polls: Counter[str] = Counter()
    end = clock.now() + timedelta(seconds=seconds)
    while clock.now() < end:
        for code in plan.due(youngest):
            plan.polled(code)
            polls[code] += 1
        clock.advance(plan.cadence.round_every)
    return polls


class TestPollPlan:
    def test_young_every_200_ms_old_every_second(self) -> None:
        clock = ManualClock(T0)
        plan = PollPlan(clock)
        polls = run_rounds(plan, clock, {"NEWUSDT": T0, "OLDUSDT": T0 - timedelta(hours=1), "ANYUSDT": None}, 10)
        assert polls == {"NEWUSDT": 50, "OLDUSDT": 10, "ANYUSDT": 10}

    def test_a_position_grows_old_after_three_minutes(self) -> None:
        clock = ManualClock(T0)
        plan = PollPlan(clock)
        opened = {"NEWUSDT": T0 - timedelta(minutes=3) + timedelta(seconds=2)}
        assert run_rounds(plan, clock, opened, 2)["NEWUSDT"] == 10  # young for these 2 s
        assert run_rounds(plan, clock, opened, 5)["NEWUSDT"] == 5  # then once a second

    def test_the_youngest_interval_is_the_settings(self) -> None:
        clock = ManualClock(T0)
        plan = PollPlan(clock, PollCadence(interval=timedelta(seconds=2), young_interval=timedelta(milliseconds=500),
                                           young_for=timedelta(minutes=1)))
        assert plan.cadence.round_every == timedelta(milliseconds=250)
        polls = run_rounds(plan, clock, {"NEWUSDT": T0, "OLDUSDT": T0 - timedelta(minutes=1)}, 10)
        assert polls == {"NEWUSDT": 20, "OLDUSDT": 5}

    def test_a_symbol_the_stream_keeps_fresh_is_not_polled(self) -> None:
        clock = ManualClock(T0)
        plan = PollPlan(clock)
        youngest = {"NEWUSDT": T0, "SILENTUSDT": T0}
        polls: Counter[str] = Counter()
        for _ in range(30):  # 3 s; the stream pushes a NEWUSDT tick every 100 ms
            plan.streamed("NEWUSDT")
            for code in plan.due(youngest):
                plan.polled(code)
                polls[code] += 1
            clock.advance(100 * MS)
        assert polls == {"SILENTUSDT": 15}
        # The stream falls silent: the REST poll takes over within one interval.
        clock.advance(200 * MS)
        assert plan.due(youngest) == ["NEWUSDT", "SILENTUSDT"]

    def test_many_young_symbols_stay_inside_the_budget(self) -> None:
        clock = ManualClock(T0)
        plan = PollPlan(clock)  # 25 requests/s
        youngest: dict[str, datetime | None] = {f"N{i}USDT": T0 for i in range(12)}
        polls = run_rounds(plan, clock, youngest, 10)
        assert sum(polls.values()) <= 25 * 10
        assert max(polls.values()) - min(polls.values()) <= 1  # stretched alike
        # Each still polled at least every second or so.
        assert min(polls.values()) >= 10

    def test_forgets_symbols_no_longer_held(self) -> None:
        clock = ManualClock(T0)
        plan = PollPlan(clock)
        plan.polled("NEWUSDT")
        assert plan.due({}) == []
        assert plan.due({"NEWUSDT": T0}) == ["NEWUSDT"]  # held again: a fresh start

    @pytest.mark.parametrize("field", ["interval", "young_interval"])
    def test_intervals_must_be_positive(self, field: str) -> None:
        with pytest.raises(ValueError):
            PollCadence(**{field: timedelta(0)})


# --- the agents that follow it ------------------------------------------------------------------


class Prices:
    """MarketData's last_price, counting the calls per symbol."""

    def __init__(self, price: Decimal) -> None:
        self.price = price
        self.calls: Counter[str] = Counter()

    async def last_price(self, symbol: Symbol) -> Decimal | None:
        self.calls[symbol.code] += 1
        return self.price


class Exits:
    """ManagePositions.on_tick, recording the ticks."""

    def __init__(self) -> None:
        self.ticks: list[PriceTick] = []

    async def on_tick(self, tick: PriceTick) -> list[object]:
        self.ticks.append(tick)
        return []


class Stream:
    """A PriceStream whose drain hands over what a test put in."""

    def __init__(self) -> None:
        self.pending: list[PriceTick] = []
        self.followed: list[str] = []

    async def follow(self, symbols) -> None:  # noqa: ANN001
        self.followed = sorted(s.code for s in symbols)

    async def drain(self, wait: timedelta) -> list[PriceTick]:
        ticks, self.pending = self.pending, []
        return ticks


async def open_position(store: InMemoryEventStore, code: str, at: datetime, user: str = "alice") -> None:
    symbol, target = Symbol.parse(code, "USDT"), f"t-{code}-{user}"
    position = Position.open(target, user, symbol, Decimal("1"), Decimal("10"), Decimal("10"), Decimal("0"),
                             "USDT", 2, PRESETS["balanced"], Cause(at, target))
    await repository.save(store, position)


async def test_the_risk_manager_polls_young_positions_faster_and_skips_streamed_ones() -> None:
    clock = ManualClock(T0)
    store, book = InMemoryEventStore(), TradeBook()
    await open_position(store, "NEWUSDT", T0)
    await open_position(store, "OLDUSDT", T0 - timedelta(hours=2))
    await open_position(store, "WSUSDT", T0)
    plan = PollPlan(clock)
    prices, exits, stream = Prices(Decimal("0.95")), Exits(), Stream()
    risk = RiskManagerAgent(exits, prices, InMemoryTraderDirectory(), store, book, clock, plan=plan)  # type: ignore[arg-type]
    pushed = PriceStreamAgent(exits, stream, store, book, plan=plan)  # type: ignore[arg-type]
    details = []
    for _ in range(50):  # 5 s of rounds, 100 ms apart; the stream pushes WSUSDT each round
        stream.pending = [PriceTick(Symbol.parse("WSUSDT", "USDT"), Decimal("0.97"), clock.now())]
        await pushed.tick()
        details.append(await risk.tick())
        clock.advance(plan.cadence.round_every)
    assert prices.calls == {"NEWUSDT": 25, "OLDUSDT": 5}
    assert stream.followed == ["NEWUSDT", "OLDUSDT", "WSUSDT"]
    assert Counter(t.symbol.code for t in exits.ticks) == {"NEWUSDT": 25, "OLDUSDT": 5, "WSUSDT": 50}
    assert details[0] == "3 symbol(s) watched, 0 exit(s), 2 polled"
    assert details[1] == "3 symbol(s) watched, 0 exit(s), 0 polled"


async def test_a_symbol_is_as_young_as_its_youngest_position() -> None:
    clock = ManualClock(T0)
    store, book = InMemoryEventStore(), TradeBook()
    await open_position(store, "NEWUSDT", T0 - timedelta(hours=1), user="alice")
    await open_position(store, "NEWUSDT", T0, user="bob")  # bought in the same listing just now
    plan, prices = PollPlan(clock), Prices(Decimal("1"))
    risk = RiskManagerAgent(Exits(), prices, InMemoryTraderDirectory(), store, book, clock, plan=plan)  # type: ignore[arg-type]
    for _ in range(20):  # 2 s
        await risk.tick()
        clock.advance(plan.cadence.round_every)
    assert prices.calls == {"NEWUSDT": 10}


async def test_without_a_plan_every_symbol_is_polled_each_round() -> None:
    clock = ManualClock(T0)
    store, book = InMemoryEventStore(), TradeBook()
    await open_position(store, "NEWUSDT", T0)
    await open_position(store, "OLDUSDT", T0 - timedelta(hours=2))
    prices = Prices(Decimal("1"))
    risk = RiskManagerAgent(Exits(), prices, InMemoryTraderDirectory(), store, book, clock)  # type: ignore[arg-type]
    for _ in range(3):
        assert await risk.tick() == "2 symbol(s) watched, 0 exit(s)"
    assert prices.calls == {"NEWUSDT": 3, "OLDUSDT": 3}
