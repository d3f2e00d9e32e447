"""In-process scheduler, locks, cache and fan-out: what only the twins can show (exact
instants, small limits). The behaviour they share with Redis is in test_redis_contract.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.clock import ManualClock
from adapters.memory import (
    InMemoryCache,
    InMemoryEventFanout,
    InMemoryLockService,
    InMemoryScheduler,
    InMemoryTraderDirectory,
)
from application.errors import NotFound, SubscriptionLost
from application.ports import Lease, ScheduledJob, TraderSettings

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
S = timedelta(seconds=1)


class TestScheduler:
    async def test_the_same_kind_and_key_keeps_one_job(self) -> None:
        scheduler = InMemoryScheduler()
        await scheduler.schedule(ScheduledJob("snipe", "t-1", T0))
        await scheduler.schedule(ScheduledJob("snipe", "t-1", T0 + 5 * S))
        assert scheduler.pending == [ScheduledJob("snipe", "t-1", T0 + 5 * S)]
        assert scheduler.take_due(T0 + 4 * S) == []
        assert scheduler.take_due(T0 + 5 * S) == [ScheduledJob("snipe", "t-1", T0 + 5 * S)]

    async def test_same_key_of_another_kind_is_another_job(self) -> None:
        scheduler = InMemoryScheduler()
        await scheduler.schedule(ScheduledJob("snipe", "t-1", T0))
        await scheduler.schedule(ScheduledJob("expire", "t-1", T0))
        assert len(scheduler.pending) == 2

    async def test_take_due_returns_due_jobs_in_time_then_key_order_and_removes_them(self) -> None:
        scheduler = InMemoryScheduler()
        for key, offset in [("c", 2), ("b", 1), ("a", 2), ("late", 10), ("d", 0)]:
            await scheduler.schedule(ScheduledJob("snipe", key, T0 + offset * S))
        due = scheduler.take_due(T0 + 2 * S)
        assert [j.key for j in due] == ["d", "b", "a", "c"]
        assert scheduler.take_due(T0 + 2 * S) == []
        assert [j.key for j in scheduler.pending] == ["late"]
        assert scheduler.next_run_at() == T0 + 10 * S

    async def test_cancel_removes_only_that_job_and_tolerates_unknown(self) -> None:
        scheduler = InMemoryScheduler()
        await scheduler.schedule(ScheduledJob("snipe", "t-1", T0))
        await scheduler.schedule(ScheduledJob("snipe", "t-2", T0 + S))
        await scheduler.cancel("snipe", "t-1")
        await scheduler.cancel("snipe", "never")
        await scheduler.cancel("other", "t-2")
        assert [j.key for j in scheduler.take_due(T0 + timedelta(hours=1))] == ["t-2"]
        assert scheduler.next_run_at() is None


class TestLocks:
    async def test_a_lease_is_exclusive_until_released(self) -> None:
        locks = InMemoryLockService(ManualClock(T0))
        async with locks.lease("snipe:t-1", timedelta(minutes=2)) as first:
            assert first == Lease("snipe:t-1", 1, first=True)
            async with locks.lease("snipe:t-1", timedelta(minutes=2)) as second:
                assert second is None
            async with locks.lease("snipe:t-2", timedelta(minutes=2)) as other_key:
                assert other_key == Lease("snipe:t-2", 1, first=True)
        async with locks.lease("snipe:t-1", timedelta(minutes=2)) as after:
            assert after == Lease("snipe:t-1", 2)

    async def test_a_refused_lease_does_not_release_the_holder(self) -> None:
        locks = InMemoryLockService(ManualClock(T0))
        async with locks.lease("k", timedelta(minutes=2)) as held:
            assert held
            async with locks.lease("k", timedelta(minutes=2)) as refused:
                assert not refused
            async with locks.lease("k", timedelta(minutes=2)) as still_refused:
                assert not still_refused

    async def test_released_on_error_too(self) -> None:
        locks = InMemoryLockService(ManualClock(T0))
        with pytest.raises(RuntimeError):
            async with locks.lease("k", timedelta(minutes=2)):
                raise RuntimeError("executor crashed")
        async with locks.lease("k", timedelta(minutes=2)) as held:
            assert held

    async def test_a_lease_expires_after_its_ttl(self) -> None:
        clock = ManualClock(T0)
        locks = InMemoryLockService(clock)
        async with locks.lease("k", timedelta(minutes=2)) as held:
            assert held
            clock.advance(timedelta(minutes=2) - timedelta(microseconds=1))
            async with locks.lease("k", timedelta(minutes=2)) as before_expiry:
                assert not before_expiry
            clock.advance(timedelta(microseconds=1))
            async with locks.lease("k", timedelta(minutes=2)) as taken_over:
                assert taken_over

    async def test_the_lapsed_holder_does_not_release_its_successor(self) -> None:
        clock = ManualClock(T0)
        locks = InMemoryLockService(clock)
        stale = locks.lease("k", timedelta(minutes=2))
        assert await stale.__aenter__() == Lease("k", 1, first=True)
        clock.advance(timedelta(minutes=3))
        async with locks.lease("k", timedelta(minutes=2)) as successor:
            assert successor == Lease("k", 2)
            await stale.__aexit__(None, None, None)  # the first executor finally finishes
            async with locks.lease("k", timedelta(minutes=2)) as third:
                assert third is None, "a third executor got the lease the second one holds"


    async def test_a_refused_lease_takes_no_token(self) -> None:
        locks = InMemoryLockService(ManualClock(T0))
        async with locks.lease("k", timedelta(minutes=2)) as first, locks.lease("k", timedelta(minutes=2)) as refused:
            assert refused is None
        async with locks.lease("k", timedelta(minutes=2)) as second:
            assert (first, second) == (Lease("k", 1, first=True), Lease("k", 2))

    async def test_a_renewed_lease_lasts_its_new_ttl_from_the_renewal(self) -> None:
        clock = ManualClock(T0)
        locks = InMemoryLockService(clock)
        async with locks.lease("k", timedelta(minutes=2)) as held:
            assert held is not None
            clock.advance(timedelta(minutes=1))
            assert await locks.renew(held, timedelta(minutes=2))
            clock.advance(timedelta(minutes=2) - timedelta(microseconds=1))
            assert await locks.renew(held, timedelta(minutes=2))
            clock.advance(timedelta(minutes=2))
            assert not await locks.renew(held, timedelta(minutes=2)), "renewed at the instant it lapsed"


class TestCache:
    # Set, get and delete: test_redis_contract.py (TestCache), on these twins too.

    async def test_values_expire_after_their_ttl(self) -> None:
        clock = ManualClock(T0)
        cache = InMemoryCache(clock)
        await cache.set("short", b"1", ttl=10 * S)
        await cache.set("forever", b"2")
        clock.advance(10 * S - timedelta(microseconds=1))
        assert await cache.get("short") == b"1"
        clock.advance(timedelta(microseconds=1))
        assert await cache.get("short") is None
        clock.advance(timedelta(days=365))
        assert await cache.get("forever") == b"2"

    async def test_setting_again_renews_the_ttl(self) -> None:
        clock = ManualClock(T0)
        cache = InMemoryCache(clock)
        await cache.set("k", b"1", ttl=10 * S)
        clock.advance(8 * S)
        await cache.set("k", b"2", ttl=10 * S)
        clock.advance(8 * S)
        assert await cache.get("k") == b"2"
        await cache.set("k", b"3")  # no ttl: kept until deleted
        clock.advance(timedelta(days=1))
        assert await cache.get("k") == b"3"


class TestEventFanout:
    async def test_a_subscriber_too_far_behind_is_dropped_after_what_it_had(self) -> None:
        fanout = InMemoryEventFanout(max_pending=3)
        async with fanout.subscribe("alice") as slow, fanout.subscribe("alice") as keeping_up:
            for event in (b"1", b"2", b"3"):
                await fanout.publish("alice", event)
            assert [await anext(keeping_up) for _ in range(3)] == [b"1", b"2", b"3"]
            await fanout.publish("alice", b"4")  # one too many for the slow one; never waits
            assert [await anext(slow) for _ in range(3)] == [b"1", b"2", b"3"]
            with pytest.raises(SubscriptionLost):
                await anext(slow)
            await fanout.publish("alice", b"5")
            with pytest.raises(SubscriptionLost):
                await anext(slow)  # stays dropped
            assert [await anext(keeping_up) for _ in range(2)] == [b"4", b"5"]


class TestTraderDirectory:
    async def test_auto_snipers_and_lookup(self) -> None:
        directory = InMemoryTraderDirectory([TraderSettings("alice"), TraderSettings("bob", auto_snipe=False)])
        assert [t.user_id for t in await directory.auto_snipers()] == ["alice"]
        assert (await directory.settings_for("bob")).auto_snipe is False
        with pytest.raises(NotFound):
            await directory.settings_for("carol")
        directory.put(TraderSettings("bob"))
        assert {t.user_id for t in await directory.auto_snipers()} == {"alice", "bob"}
