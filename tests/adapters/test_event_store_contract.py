"""The EventStore contract, run against every store: in memory, SQLite file, Postgres.

The in-memory store is the reference; the SQL store must behave the same on both databases.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.eventstore.memory import InMemoryEventStore
from adapters.eventstore.sqlalchemy_store import SqlEventStore, make_engine
from application.errors import ConcurrencyConflict
from application.ports import EventStore
from domain.events import (
    Cause,
    DomainEvent,
    ListingAnnounced,
    PositionOpened,
    PositionPeakRaised,
    Recorded,
    RiskCheckFailed,
    SnipeFailed,
    SnipeOrderFilled,
    TakeProfitHit,
)
from domain.exit_plans import PRESETS
from domain.target import SnipeTarget, TargetStatus, snipe_client_order_id, target_stream
from domain.values import Symbol
from tests.adapters.sql_support import empty_database

T0 = datetime(2025, 3, 14, 9, 26, 53, 589793, tzinfo=UTC)
PLUS_TWO = timezone(timedelta(hours=2))


# --- backends -----------------------------------------------------------------------------

@dataclass
class Backend:
    name: str
    store: EventStore
    # Another store over the same storage (its own engine for the SQL stores), for races.
    open_another: Callable[[], Awaitable[EventStore]]


BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Backend]:
    if request.param == "memory":
        memory = InMemoryEventStore()

        async def same_store() -> EventStore:
            return memory

        yield Backend("memory", memory, same_store)
        return

    engines: list[AsyncEngine] = []
    async with empty_database(request.param, request, tmp_path, "contract") as (url, engine_options):

        async def open_store() -> EventStore:
            engine = make_engine(url, **engine_options)
            engines.append(engine)
            return SqlEventStore(engine)

        try:
            store = await open_store()
            assert isinstance(store, SqlEventStore)
            await store.create_schema()
            yield Backend(request.param, store, open_store)
        finally:
            for engine in engines:
                await engine.dispose()


# --- helpers ------------------------------------------------------------------------------

def rec(
    stream_id: str, version: int, event: DomainEvent, at: datetime = T0, user: str = "user-1", corr: str = "corr-1",
) -> Recorded:
    return Recorded(
        stream_id=stream_id, version=version, occurred_at=at, user_id=user, correlation_id=corr, event=event
    )


def failed(n: int) -> SnipeFailed:
    return SnipeFailed(target_id=f"t{n}", reason=f"reason {n}")


def unpositioned(records: list[Recorded]) -> list[Recorded]:
    return [replace(r, position=None) for r in records]


def position_opened() -> PositionOpened:
    return PositionOpened(
        position_id="p1",
        target_id="t1",
        symbol="NEWUSDT",
        quote_asset="USDT",
        entry_price=Decimal("0.00009512"),
        quantity=Decimal("105214.46"),
        cost=Decimal("10.01"),
        entry_fee=Decimal("0.005005"),
        entry_fee_asset="USDT",
        quantity_scale=2,
        exit_plan=PRESETS["balanced"],
        opened_at=T0 + timedelta(seconds=1),
    )


# --- round trip ---------------------------------------------------------------------------

async def test_append_and_load_round_trip_several_event_types(backend: Backend) -> None:
    store = backend.store
    position_events = [
        rec("position-p1", 1, position_opened(), at=T0, corr="corr-open"),
        rec("position-p1", 2, PositionPeakRaised("p1", Decimal("0.00011900")), at=T0 + timedelta(minutes=3)),
        rec(
            "position-p1",
            3,
            TakeProfitHit(
                position_id="p1",
                client_order_id="ext1",
                level=0,
                price=Decimal("0.00011415"),
                quantity=Decimal("42085.78"),
                proceeds=Decimal("4.80409"),
                fee=Decimal("0.0024"),
                cost_released=Decimal("4.004"),
                realised_pnl=Decimal("0.79769"),
            ),
            at=T0 + timedelta(minutes=5),
        ),
    ]
    target_events = [
        rec(
            "listing-c1",
            1,
            ListingAnnounced(
                "c1", "NEW", "New Coin", "NEWUSDT", launch_at=datetime(2025, 3, 15, 12, 0, tzinfo=PLUS_TWO)
            ),
            user="system",
        ),
        rec("target-t9", 1, RiskCheckFailed("t9", ("daily loss limit", "too many open positions"))),
        rec(
            "target-t9",
            2,
            SnipeOrderFilled(
                "t9", "snp1", "ex-1", Decimal("10.01"), Decimal("1"), Decimal("10.01"), Decimal("0"), "", 3,
                Decimal("12.5")
            ),
        ),
    ]

    stored = await store.append(position_events + target_events)

    assert unpositioned(stored) == position_events + target_events
    assert all(r.position is not None for r in stored)
    loaded_position = await store.load("position-p1")
    assert loaded_position == stored[:3]
    assert unpositioned(loaded_position) == position_events
    assert await store.load("listing-c1") == stored[3:4]
    assert await store.load("target-t9") == stored[4:]

    opened = loaded_position[0].event
    assert isinstance(opened, PositionOpened)
    assert opened.exit_plan == PRESETS["balanced"]
    assert str(opened.entry_price) == "0.00009512"  # exactly, not a float's idea of it
    assert str(opened.cost) == "10.01"
    assert type(opened.entry_price) is Decimal
    assert loaded_position[0].correlation_id == "corr-open"
    for r in loaded_position + await store.load("listing-c1"):
        assert r.occurred_at.tzinfo is not None and r.occurred_at.utcoffset() == timedelta(0)
    listing = (await store.load("listing-c1"))[0]
    assert listing.user_id == "system"
    assert isinstance(listing.event, ListingAnnounced)
    assert listing.event.launch_at == datetime(2025, 3, 15, 10, 0, tzinfo=UTC)
    reasons = (await store.load("target-t9"))[0].event
    assert isinstance(reasons, RiskCheckFailed) and reasons.reasons == ("daily loss limit", "too many open positions")


async def test_occurred_at_keeps_its_instant_whatever_the_offset(backend: Backend) -> None:
    at = datetime(2025, 1, 1, 0, 30, 0, 5, tzinfo=PLUS_TWO)
    [stored] = await backend.store.append([rec("s-tz", 1, failed(1), at=at)])
    [loaded] = await backend.store.load("s-tz")
    assert loaded == stored
    assert loaded.occurred_at == datetime(2024, 12, 31, 22, 30, 0, 5, tzinfo=UTC)
    assert loaded.occurred_at.utcoffset() is not None


async def test_load_of_an_unknown_stream_is_empty(backend: Backend) -> None:
    assert await backend.store.load("nope") == []
    await backend.store.append([rec("a", 1, failed(1))])
    assert await backend.store.load("nope") == []


async def test_append_nothing_writes_nothing(backend: Backend) -> None:
    assert await backend.store.append([]) == []
    assert await backend.store.last_position() == 0


# --- positions and global order -------------------------------------------------------------

async def test_positions_increase_strictly_and_are_contiguous_within_an_append(backend: Backend) -> None:
    store = backend.store
    first = await store.append([rec("a", 1, failed(1)), rec("a", 2, failed(2)), rec("a", 3, failed(3))])
    second = await store.append([rec("b", 1, failed(4)), rec("a", 4, failed(5))])

    for batch in (first, second):
        positions = [r.position for r in batch]
        assert all(isinstance(p, int) for p in positions)
        assert positions == list(range(positions[0], positions[0] + len(batch)))
    assert first[0].position is not None and first[0].position >= 1
    assert second[0].position > first[-1].position  # type: ignore[operator]
    assert await store.read_all() == first + second
    assert await store.load("a") == first + second[1:]


async def test_read_all_pages_in_global_order(backend: Backend) -> None:
    store = backend.store
    stored: list[Recorded] = []
    stored += await store.append([rec("a", 1, failed(1)), rec("b", 1, failed(2))])
    stored += await store.append([rec("c", 1, failed(3))])
    stored += await store.append([rec("a", 2, failed(4)), rec("c", 2, failed(5)), rec("b", 2, failed(6))])
    stored += await store.append([rec("a", 3, failed(7))])

    everything = await store.read_all()
    assert everything == stored
    positions = [r.position for r in everything]
    assert positions == sorted(set(positions))  # type: ignore[type-var]

    pages: list[list[Recorded]] = []
    after = 0
    while page := await store.read_all(after=after, limit=3):
        assert len(page) <= 3
        pages.append(page)
        after = page[-1].position  # type: ignore[assignment]
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [r for p in pages for r in p] == stored

    assert await store.read_all(after=stored[1].position) == stored[2:]  # type: ignore[arg-type]
    assert await store.read_all(after=stored[1].position, limit=2) == stored[2:4]  # type: ignore[arg-type]
    assert await store.read_all(after=stored[-1].position) == []  # type: ignore[arg-type]
    assert await store.read_all(limit=0) == []
    assert await store.read_all(limit=100) == stored


async def test_read_user_pages_one_users_events_in_global_order(backend: Backend) -> None:
    store = backend.store
    stored = await store.append([rec("a", 1, failed(1), user="alice"), rec("b", 1, failed(2), user="bob")])
    stored += await store.append([rec("s", 1, failed(3), user="system")])
    stored += await store.append(
        [rec("b", 2, failed(4), user="bob"), rec("a", 2, failed(5), user="alice"), rec("c", 1, failed(6), user="alice")]
    )
    stored += await store.append([rec("a", 3, failed(7), user="alice")])
    alice = [r for r in stored if r.user_id == "alice"]

    assert await store.read_user("alice") == alice
    assert await store.read_user("bob") == [r for r in stored if r.user_id == "bob"]
    assert await store.read_user("nobody") == []
    assert await store.read_user("alic") == []  # exactly this user, not a prefix

    pages: list[list[Recorded]] = []
    after = 0
    while page := await store.read_user("alice", after=after, limit=2):
        pages.append(page)
        after = page[-1].position  # type: ignore[assignment]
    assert [len(p) for p in pages] == [2, 2]
    assert [r for p in pages for r in p] == alice

    # `after` is a global position, which need not be one of the user's.
    assert await store.read_user("alice", after=stored[1].position) == alice[1:]  # type: ignore[arg-type]
    assert await store.read_user("alice", after=alice[-1].position) == []  # type: ignore[arg-type]
    assert await store.read_user("alice", limit=0) == []
    assert await store.read_user("alice", limit=-1) == []
    assert await store.read_user("alice", after=-5, limit=100) == alice


async def test_last_position(backend: Backend) -> None:
    store = backend.store
    assert await store.last_position() == 0
    first = await store.append([rec("a", 1, failed(1)), rec("a", 2, failed(2))])
    assert await store.last_position() == first[-1].position
    second = await store.append([rec("b", 1, failed(3))])
    assert await store.last_position() == second[-1].position
    with pytest.raises(ConcurrencyConflict):
        await store.append([rec("b", 1, failed(4))])
    assert await store.last_position() == second[-1].position


# --- optimistic concurrency -------------------------------------------------------------------

async def test_appending_version_one_twice_is_a_conflict(backend: Backend) -> None:
    store = backend.store
    [original] = await store.append([rec("a", 1, failed(1))])

    with pytest.raises(ConcurrencyConflict) as raised:
        await store.append([rec("a", 1, failed(2), corr="corr-late")])

    assert raised.value.stream_id == "a"
    assert raised.value.expected_version == 0
    assert raised.value.actual_version == 1
    assert await store.load("a") == [original]
    assert await store.read_all() == [original]
    assert await store.last_position() == original.position


async def test_a_conflict_in_one_stream_writes_nothing_of_the_others(backend: Backend) -> None:
    store = backend.store
    existing = await store.append([rec("b", 1, failed(1))])

    with pytest.raises(ConcurrencyConflict) as raised:
        await store.append([rec("a", 1, failed(2)), rec("a", 2, failed(3)), rec("b", 1, failed(4))])

    assert raised.value.stream_id == "b"
    assert raised.value.actual_version == 1
    assert await store.load("a") == []
    assert await store.load("b") == existing
    assert await store.read_all() == existing
    assert await store.last_position() == existing[-1].position

    # ... and the stream that was fine can still start at version 1 afterwards.
    later = await store.append([rec("a", 1, failed(5)), rec("b", 2, failed(6))])
    assert await store.load("a") == later[:1]
    assert await store.load("b") == existing + later[1:]


async def test_a_gap_in_versions_is_refused(backend: Backend) -> None:
    store = backend.store
    with pytest.raises(ConcurrencyConflict) as raised:
        await store.append([rec("a", 3, failed(1))])
    assert (raised.value.stream_id, raised.value.expected_version, raised.value.actual_version) == ("a", 2, 0)
    assert await store.load("a") == []
    assert await store.last_position() == 0

    # A gap inside one append is refused too, and takes the good events with it.
    with pytest.raises(ConcurrencyConflict) as raised:
        await store.append([rec("a", 1, failed(2)), rec("a", 3, failed(3))])
    assert (raised.value.expected_version, raised.value.actual_version) == (2, 1)
    assert await store.load("a") == []

    stored = await store.append([rec("a", 1, failed(4))])
    with pytest.raises(ConcurrencyConflict):
        await store.append([rec("a", 3, failed(5))])
    assert await store.load("a") == stored


async def test_two_concurrent_appenders_of_the_same_version_one_wins(backend: Backend) -> None:
    first_writer = await backend.open_another()
    second_writer = await backend.open_another()
    for round_ in range(5):
        stream = f"race-{round_}"
        base: list[Recorded] = []
        if round_ % 2:  # also race for a version after the first
            base = await first_writer.append([rec(stream, 1, failed(0))])
        version = len(base) + 1
        mine = rec(stream, version, failed(1), corr="writer-1")
        theirs = rec(stream, version, failed(2), corr="writer-2")

        outcomes = await asyncio.gather(
            first_writer.append([mine]), second_writer.append([theirs]), return_exceptions=True
        )

        winners = [o for o in outcomes if isinstance(o, list)]
        losers = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(winners) == 1, outcomes
        assert len(losers) == 1 and isinstance(losers[0], ConcurrencyConflict), outcomes
        assert losers[0].stream_id == stream
        assert losers[0].actual_version == version
        [won] = winners[0]
        assert won.correlation_id in ("writer-1", "writer-2")
        assert await backend.store.load(stream) == base + [won]


# --- aggregates -----------------------------------------------------------------------------

async def test_an_aggregate_rebuilds_from_its_stored_events(backend: Backend) -> None:
    launch = datetime(2025, 3, 20, 12, 0, tzinfo=UTC)
    target = SnipeTarget.create(
        target_id="t42",
        user_id="user-7",
        coin_id="coin-42",
        symbol=Symbol("NEW", "USDT"),
        launch_at=launch,
        quote_amount=Decimal("10.01"),
        exit_plan=PRESETS["balanced"],
        confidence=Decimal("0.85"),
        live=False,
        cause=Cause(T0, "corr-t42"),
    )
    target.mark_ready("sts2-st2-tt4", Decimal("0.95"), 3 * 3600, Cause(T0 + timedelta(hours=1), "corr-t42"))
    target.schedule(
        launch - timedelta(milliseconds=50), launch + timedelta(seconds=30), Cause(T0 + timedelta(hours=2), "corr-t42")
    )
    stream_id = target_stream("t42")

    stored = await backend.store.append(target.pending)
    loaded = await backend.store.load(stream_id)

    assert loaded == stored
    assert unpositioned(loaded) == target.pending
    rebuilt = SnipeTarget.rehydrate(stream_id, loaded)
    assert rebuilt.status is TargetStatus.SCHEDULED
    assert rebuilt.version == 3 == target.version
    assert rebuilt.user_id == "user-7"
    assert rebuilt.target_id == "t42"
    assert rebuilt.coin_id == "coin-42"
    assert rebuilt.symbol == Symbol("NEW", "USDT")
    assert rebuilt.launch_at == launch
    assert rebuilt.quote_amount == Decimal("10.01") and str(rebuilt.quote_amount) == "10.01"
    assert rebuilt.exit_plan == PRESETS["balanced"]
    assert rebuilt.confidence == Decimal("0.95")
    assert rebuilt.live is False
    assert rebuilt.execute_at == launch - timedelta(milliseconds=50)
    assert rebuilt.deadline_at == launch + timedelta(seconds=30)
    assert rebuilt.client_order_id == snipe_client_order_id("t42").value
    assert rebuilt.expected_version == 3 and rebuilt.pending == []

    # The next command continues the stream where the store has it.
    rebuilt.submit_order(Cause(launch, "corr-t42"))
    [submitted] = await backend.store.append(rebuilt.pending)
    assert submitted.version == 4
    assert SnipeTarget.rehydrate(stream_id, await backend.store.load(stream_id)).status is TargetStatus.EXECUTING
