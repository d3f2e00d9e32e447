"""Listing use cases with a second worker on the same store."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta

from adapters.eventstore.memory import InMemoryEventStore
from adapters.memory import InMemoryTraderDirectory
from application import repository
from application.errors import ConcurrencyConflict
from application.ports import TraderSettings
from application.trade_book import TradeBook
from application.use_cases.listings import EXECUTE_SNIPE, DetectReadyStates, SyncCalendar
from domain.events import Cause, Recorded
from domain.listing import target_id_for
from domain.target import TargetStatus
from tests.adapters.paper_support import ANNOUNCED, LAUNCH, listing
from tests.application.support import World, world_at


class GatedTraders(InMemoryTraderDirectory):
    """Holds each caller at a barrier, so two workers read the book before either writes."""

    def __init__(self, traders: list[TraderSettings], barrier: asyncio.Barrier) -> None:
        super().__init__(traders)
        self.barrier = barrier

    async def auto_snipers(self) -> list[TraderSettings]:
        await self.barrier.wait()
        return await super().auto_snipers()


class ConflictCountingStore:
    def __init__(self, inner: InMemoryEventStore) -> None:
        self.inner = inner
        self.conflicts = 0

    async def append(self, events: Sequence[Recorded]) -> list[Recorded]:
        try:
            return await self.inner.append(events)
        except ConcurrencyConflict:
            self.conflicts += 1
            raise

    async def load(self, stream_id: str) -> list[Recorded]:
        return await self.inner.load(stream_id)

    async def read_all(self, after: int = 0, limit: int | None = None) -> list[Recorded]:
        return await self.inner.read_all(after, limit)

    async def last_position(self) -> int:
        return await self.inner.last_position()


def two_listing_world() -> World:
    second = listing(coin_id="alt-2", ticker="ALT", launch_at="2026-11-25T10:30:00Z")
    return world_at(ANNOUNCED, listings=[listing(), second],
                    traders=[TraderSettings("alice"), TraderSettings("bob")])


async def type_counts(world: World) -> Counter[tuple[str, str]]:
    return Counter((r.event.type_name, r.stream_id) for r in await world.store.read_all())


class TestSyncCalendarRace:
    async def test_a_second_worker_recording_the_same_listings_is_tolerated(self) -> None:
        world = two_listing_world()
        barrier = asyncio.Barrier(2)
        traders = GatedTraders([TraderSettings("alice"), TraderSettings("bob")], barrier)
        store_a, store_b = ConflictCountingStore(world.store), ConflictCountingStore(world.store)
        book_a, book_b = TradeBook(), TradeBook()
        worker_a = SyncCalendar(store_a, world.paper, traders, world.clock, book_a)
        worker_b = SyncCalendar(store_b, world.paper, traders, world.clock, book_b)

        result_a, result_b = await asyncio.wait_for(asyncio.gather(worker_a(), worker_b()), timeout=5)

        # One worker recorded everything; the other hit a conflict on each and let it be.
        results = sorted([result_a, result_b], key=lambda r: len(r.new_listings))
        assert results[0].new_listings == [] and results[0].new_targets == []
        assert sorted(results[1].new_listings) == ["ALTUSDT", "NEWUSDT"]
        assert len(results[1].new_targets) == 4
        assert store_a.conflicts + store_b.conflicts == 2 + 4

        counts = await type_counts(world)
        assert all(n == 1 for n in counts.values()), counts
        assert sum(1 for kind, _ in counts if kind == "ListingAnnounced") == 2
        assert sum(1 for kind, _ in counts if kind == "SnipeTargetCreated") == 4
        # Both books end up knowing everything.
        for book in (book_a, book_b):
            assert set(book.listings) == {"new-1", "alt-2"}
            assert len(book.targets) == 4

    async def test_a_later_sync_records_nothing_again(self) -> None:
        world = two_listing_world()
        first = await world.sync_calendar()()
        assert len(first.new_listings) == 2 and len(first.new_targets) == 4
        events = await world.store.last_position()
        again = await world.sync_calendar(TradeBook())()  # a fresh worker catches up first
        assert (again.new_listings, again.new_targets) == ([], [])
        assert await world.store.last_position() == events

    async def test_no_target_for_a_listing_already_launched(self) -> None:
        world = world_at(LAUNCH, traders=[TraderSettings("alice")])
        result = await world.sync_calendar()()
        assert result.new_listings == ["NEWUSDT"] and result.new_targets == []

    async def test_an_unknown_exit_strategy_skips_that_user_only(self) -> None:
        world = world_at(ANNOUNCED, traders=[TraderSettings("alice", exit_strategy="yolo"), TraderSettings("bob")])
        result = await world.sync_calendar()()
        assert result.new_targets == [target_id_for("bob", "new-1")]
        assert len(result.skipped) == 1 and result.skipped[0].startswith("alice/NEWUSDT: unknown exit strategy")


class GatedFeed:
    """The paper exchange's listing feed, with each symbol-state poll held at a barrier."""

    def __init__(self, world: World, barrier: asyncio.Barrier) -> None:
        self.world, self.barrier = world, barrier

    async def calendar(self):  # noqa: ANN201
        return await self.world.paper.calendar()

    async def symbol_states(self):  # noqa: ANN201
        await self.barrier.wait()
        return await self.world.paper.symbol_states()


class TestDetectReadyStatesRace:
    async def test_a_second_worker_finding_the_target_already_scheduled_leaves_it(self) -> None:
        world = world_at(ANNOUNCED, traders=[TraderSettings("alice")])
        await world.sync_calendar()()
        world.clock.set(LAUNCH - timedelta(minutes=20))  # ready state in force, inside the lead window
        feed = GatedFeed(world, asyncio.Barrier(2))
        workers = [
            DetectReadyStates(world.store, feed, world.traders, world.scheduler, world.clock, TradeBook(), world.timing)
            for _ in range(2)
        ]

        results = await asyncio.wait_for(asyncio.gather(*(w() for w in workers)), timeout=5)

        tid = target_id_for("alice", "new-1")
        assert sorted(len(r.scheduled) for r in results) == [0, 1]
        assert [r.scheduled for r in results if r.scheduled] == [[tid]]
        assert (await world.target(tid)).status is TargetStatus.SCHEDULED
        counts = await type_counts(world)
        assert all(n == 1 for n in counts.values()), counts
        assert counts[("SnipeScheduled", f"target-{tid}")] == 1
        assert counts[("ListingReadyDetected", "listing-new-1")] == 1
        assert [(j.kind, j.key) for j in world.scheduler.pending] == [(EXECUTE_SNIPE, tid)]


class CancellingFeed:
    """While the symbol states are being fetched, a person cancels the target."""

    def __init__(self, world: World, target_id: str) -> None:
        self.world, self.target_id = world, target_id

    async def calendar(self):  # noqa: ANN201
        return await self.world.paper.calendar()

    async def symbol_states(self):  # noqa: ANN201
        target = await self.world.target(self.target_id)
        target.cancel("changed my mind", "alice", Cause(self.world.clock.now(), self.target_id))
        await repository.save(self.world.store, target)
        return await self.world.paper.symbol_states()


class TestExpiryRace:
    async def test_a_target_cancelled_during_the_poll_is_not_expired(self) -> None:
        no_ready = listing(states=[{"at": "2026-11-25T08:00:00Z", "sts": 1, "st": 1, "tt": 1}])
        world = world_at(ANNOUNCED, listings=[no_ready], traders=[TraderSettings("alice")])
        await world.sync_calendar()()
        tid = target_id_for("alice", "new-1")
        world.clock.set(LAUNCH + world.timing.expiry_grace)
        detect = DetectReadyStates(world.store, CancellingFeed(world, tid), world.traders, world.scheduler, world.clock,
                                   world.book, world.timing)

        result = await detect()

        assert result.expired == []
        assert (await world.target(tid)).status is TargetStatus.CANCELLED
        assert world.book.targets[tid].status == "cancelled"

    async def test_a_watching_target_past_launch_and_grace_expires(self) -> None:
        no_ready = listing(states=[{"at": "2026-11-25T08:00:00Z", "sts": 1, "st": 1, "tt": 1}])
        world = world_at(ANNOUNCED, listings=[no_ready], traders=[TraderSettings("alice")])
        await world.sync_calendar()()
        tid = target_id_for("alice", "new-1")
        world.clock.set(LAUNCH + world.timing.expiry_grace - timedelta(microseconds=1))
        assert (await world.detect_ready()()).expired == []
        world.clock.set(LAUNCH + world.timing.expiry_grace)
        assert (await world.detect_ready()()).expired == [tid]
        assert world.book.targets[tid].reason == "never reached the ready state before launch"
