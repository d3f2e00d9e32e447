"""The trade book: a read model that follows the store by global position."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from adapters.eventstore.memory import InMemoryEventStore
from application import repository
from application.trade_book import TradeBook
from domain.events import Cause
from domain.exit_plans import PRESETS
from domain.listing import Listing
from domain.position import ExitDecision, ExitReason, Position
from domain.safety import SafetySwitch
from domain.values import Symbol

DAY1 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
NEW = Symbol("NEW", "USDT")
ALT = Symbol("ALT", "USDT")
D = Decimal


def cause(at: datetime) -> Cause:
    return Cause(at, "test")


async def open_position(
    store, target_id: str, user: str, symbol: Symbol, price: str, qty: str, spent: str, fee: str, at: datetime,
) -> Position:
    pos = Position.open(
        target_id, user, symbol, D(price), D(qty), D(spent), D(fee), symbol.quote, 2, PRESETS["balanced"], cause(at)
    )
    await repository.save(store, pos)
    return pos


async def exit_part(store, pos: Position, qty: str, price: str, fee: str, at: datetime) -> None:
    pos.submit_exit(ExitDecision(ExitReason.STOP_LOSS, None, D(qty), D(price)), cause(at))
    pos.record_exit_fill(D(price), D(qty), D(fee), cause(at))
    await repository.save(store, pos)


async def stop(store, scope: str, at: datetime = DAY1) -> None:
    switch = await repository.find(store, SafetySwitch, f"safety-{scope}") or SafetySwitch.for_scope(scope)
    switch.activate(f"{scope} halted", "ops", cause(at))
    await repository.save(store, switch)


async def clear(store, scope: str, at: datetime = DAY1) -> None:
    switch = await repository.get(store, SafetySwitch, f"safety-{scope}")
    switch.clear("ops", cause(at))
    await repository.save(store, switch)


async def announce(store, coin_id: str, ticker: str) -> None:
    listing = Listing.announce(coin_id, ticker, ticker, Symbol(ticker, "USDT"), DAY2, cause(DAY1))
    await repository.save(store, listing)


def snapshot(book: TradeBook) -> tuple:
    return (
        book.position, copy.deepcopy(book.listings), copy.deepcopy(book.targets), copy.deepcopy(book.positions),
        dict(book._daily_pnl), dict(book.stops),
    )


async def populated_store() -> InMemoryEventStore:
    store = InMemoryEventStore()
    # alice, day 1: bought 10 NEW at 1 (fee 0.01), sold all at 0.9 (fee 0.009): -1.019
    a = await open_position(store, "t-a", "alice", NEW, "1", "10", "10", "0.01", DAY1)
    await exit_part(store, a, "10", "0.9", "0.009", DAY1 + timedelta(minutes=5))
    # alice, day 1: bought 5 ALT at 2 (fee 0.005); day 2 sold 2 at 3 (fee 0.003): +1.995, 3 left
    b = await open_position(store, "t-b", "alice", ALT, "2", "5", "10", "0.005", DAY1)
    await exit_part(store, b, "2", "3", "0.003", DAY2)
    # bob, day 2: bought 20 NEW at 1 (fee 0.02), still open
    await open_position(store, "t-c", "bob", NEW, "1", "20", "20", "0.02", DAY2)
    return store


class TestCatchUp:
    async def test_catch_up_is_idempotent(self) -> None:
        store = await populated_store()
        book = TradeBook()
        applied = await book.catch_up(store)
        assert applied == await store.last_position() == book.position
        before = snapshot(book)
        assert await book.catch_up(store) == 0
        assert snapshot(book) == before

    async def test_replaying_seen_records_changes_nothing(self) -> None:
        store = await populated_store()
        book = TradeBook()
        await book.catch_up(store)
        before = snapshot(book)
        for rec in await store.read_all():
            book.apply(rec)
        assert snapshot(book) == before
        assert book.realised_pnl_on("alice", DAY1.date()) == D("-1.019")

    async def test_catch_up_is_incremental(self) -> None:
        store = InMemoryEventStore()
        book = TradeBook()
        await announce(store, "c1", "ONE")
        assert await book.catch_up(store) == 1
        await announce(store, "c2", "TWO")
        await announce(store, "c3", "THREE")
        assert await book.catch_up(store) == 2
        assert sorted(book.listings) == ["c1", "c2", "c3"]
        assert book.position == 3

    async def test_it_pages_through_the_store_in_batches(self) -> None:
        store = InMemoryEventStore()
        for i in range(5):
            await announce(store, f"c{i}", f"C{i}X")
        exact, ragged = TradeBook(), TradeBook()
        assert await ragged.catch_up(store, batch=2) == 5
        await announce(store, "c5", "C5X")
        assert await exact.catch_up(store, batch=3) == 6  # a last page exactly full
        assert len(ragged.listings) == 5 and len(exact.listings) == 6
        assert await ragged.catch_up(store, batch=2) == 1

    async def test_a_book_started_at_a_position_sees_only_what_follows(self) -> None:
        store = InMemoryEventStore()
        await announce(store, "old", "OLD")
        book = TradeBook()
        book.position = await store.last_position()
        await announce(store, "new", "NEW")
        assert await book.catch_up(store) == 1
        assert list(book.listings) == ["new"]


class TestQuestions:
    async def test_open_positions_per_user_and_symbol(self) -> None:
        book = TradeBook()
        await book.catch_up(await populated_store())
        assert [p.position_id for p in book.open_positions("alice")] == ["p-b"]
        assert [p.position_id for p in book.open_positions("bob")] == ["p-c"]
        assert [p.position_id for p in book.open_positions()] == ["p-b", "p-c"]
        assert [p.position_id for p in book.open_positions(symbol="NEWUSDT")] == ["p-c"]
        assert book.open_positions("alice", symbol="NEWUSDT") == []
        assert book.open_positions("carol") == []
        assert book.positions["p-a"].status == "closed" and book.positions["p-a"].closed_at == DAY1 + timedelta(
            minutes=5
        )
        assert book.positions["p-b"].status == "partially exited"

    async def test_open_exposure_is_the_cost_still_held(self) -> None:
        book = TradeBook()
        await book.catch_up(await populated_store())
        # ALT cost 10.005; 2 of 5 sold release 4.002; 6.003 still at risk.
        assert book.open_exposure("alice") == D("6.003")
        assert book.open_exposure("bob") == D("20.02")
        assert book.open_exposure("carol") == D(0)

    async def test_realised_pnl_is_per_user_and_day_of_the_exit(self) -> None:
        book = TradeBook()
        await book.catch_up(await populated_store())
        assert book.realised_pnl_on("alice", DAY1.date()) == D("-1.019")
        assert book.realised_pnl_on("alice", DAY2.date()) == D("1.995")
        assert book.realised_pnl_on("bob", DAY2.date()) == D(0)
        assert book.realised_pnl_on("bob", DAY1.date()) == D(0)

    async def test_fees_and_proceeds_are_followed(self) -> None:
        book = TradeBook()
        await book.catch_up(await populated_store())
        a = book.positions["p-a"]
        assert (a.cost, a.proceeds, a.fees, a.realised_pnl, a.exits) == (
            D("10.01"), D("9.0"), D("0.019"), D("-1.019"), ["StopLossHit"],
        )


class TestHalted:
    async def test_a_user_stop_halts_that_user_only(self) -> None:
        store = InMemoryEventStore()
        await stop(store, "alice")
        book = TradeBook()
        await book.catch_up(store)
        assert book.halted("alice") == "emergency stop: alice halted"
        assert book.halted("bob") is None

    async def test_a_global_stop_halts_everyone_and_is_named_first(self) -> None:
        store = InMemoryEventStore()
        await stop(store, "alice")
        await stop(store, "global")
        book = TradeBook()
        await book.catch_up(store)
        assert book.halted("bob") == "global emergency stop: global halted"
        assert book.halted("alice") == "global emergency stop: global halted"

    async def test_clearing_lifts_the_halt(self) -> None:
        store = InMemoryEventStore()
        book = TradeBook()
        await stop(store, "global")
        await stop(store, "alice")
        await book.catch_up(store)
        await clear(store, "global")
        await book.catch_up(store)
        assert book.halted("bob") is None
        assert book.halted("alice") == "emergency stop: alice halted"
        await clear(store, "alice")
        await book.catch_up(store)
        assert book.halted("alice") is None
