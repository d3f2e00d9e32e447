"""The coordination contract: cache, leases, request counters and event fan-out, run on both
twins. In memory on a manual clock (boundaries exact to the microsecond), on the local Redis
in real time (TTLs of a few hundred milliseconds, waits with slack, assertions with margins).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from adapters.redis import RedisCache, RedisEventFanout, RedisLockService, RedisRequestCounter, redis_client
from application.errors import SubscriptionLost
from application.ports import Lease
from tests.adapters.redis_support import Twins, delete_prefixed, memory_twins, redis_twins

MS = timedelta(milliseconds=1)
US = timedelta(microseconds=1)
LONG = timedelta(minutes=2)

BACKENDS = ["memory", pytest.param("redis", marks=pytest.mark.redis)]


@pytest.fixture(params=BACKENDS)
async def twins(request: pytest.FixtureRequest) -> AsyncIterator[Twins]:
    if request.param == "memory":
        yield memory_twins()
        return
    async with redis_twins(request.getfixturevalue("redis_url")) as on_redis:
        yield on_redis


async def read(events: AsyncIterator[bytes], n: int) -> list[bytes]:
    async with asyncio.timeout(5):
        return [await anext(events) for _ in range(n)]


# --- cache --------------------------------------------------------------------------------

class TestCache:
    async def test_set_get_delete(self, twins: Twins) -> None:
        cache = twins.cache
        assert await cache.get("listing:NEW") is None
        await cache.set("listing:NEW", b"v")
        assert await cache.get("listing:NEW") == b"v"
        await cache.set("listing:NEW", b"w")
        assert await cache.get("listing:NEW") == b"w"
        await cache.delete("listing:NEW")
        await cache.delete("listing:NEW")
        assert await cache.get("listing:NEW") is None

    async def test_values_are_bytes_as_given(self, twins: Twins) -> None:
        value = bytes(range(256))
        await twins.cache.set("raw", value)
        assert await twins.cache.get("raw") == value

    async def test_a_value_expires_after_its_ttl(self, twins: Twins) -> None:
        ttl = 200 * MS
        await twins.cache.set("short", b"1", ttl=ttl)
        await twins.cache.set("forever", b"2")
        assert await twins.cache.get("short") == b"1"
        if twins.exact:
            await twins.elapse(ttl - US)
            assert await twins.cache.get("short") == b"1"
            await twins.elapse(US)
        else:
            await twins.elapse(ttl + twins.slack)
        assert await twins.cache.get("short") is None
        assert await twins.cache.get("forever") == b"2"

    async def test_setting_again_renews_or_drops_the_ttl(self, twins: Twins) -> None:
        ttl = 300 * MS
        await twins.cache.set("k", b"1", ttl=ttl)
        await twins.elapse(180 * MS)
        await twins.cache.set("k", b"2", ttl=ttl)
        await twins.elapse(180 * MS)  # past the first ttl, within the second
        assert await twins.cache.get("k") == b"2"
        await twins.cache.set("k", b"3")  # no ttl: kept until deleted
        await twins.elapse(ttl + twins.slack)
        assert await twins.cache.get("k") == b"3"

    async def test_a_ttl_of_zero_or_less_leaves_nothing(self, twins: Twins) -> None:
        await twins.cache.set("k", b"1")
        await twins.cache.set("k", b"2", ttl=timedelta(0))
        assert await twins.cache.get("k") is None
        await twins.cache.set("k", b"3", ttl=-MS)
        assert await twins.cache.get("k") is None


# --- leases -------------------------------------------------------------------------------

class TestLeases:
    async def test_a_lease_is_exclusive_across_workers_until_released(self, twins: Twins) -> None:
        async with twins.locks.lease("snipe:t-1", LONG) as first:
            assert isinstance(first, Lease) and first.key == "snipe:t-1" and first
            async with twins.other_locks.lease("snipe:t-1", LONG) as second:
                assert second is None
            async with twins.locks.lease("snipe:t-1", LONG) as same_worker_again:
                assert same_worker_again is None
            async with twins.other_locks.lease("snipe:t-2", LONG) as other_key:
                assert other_key is not None
        async with twins.other_locks.lease("snipe:t-1", LONG) as after:
            assert after is not None

    async def test_a_refused_lease_does_not_release_the_holder(self, twins: Twins) -> None:
        async with twins.locks.lease("k", LONG) as held:
            assert held
            async with twins.other_locks.lease("k", LONG) as refused:
                assert refused is None
            async with twins.other_locks.lease("k", LONG) as still_refused:
                assert still_refused is None

    async def test_released_when_the_holder_raises(self, twins: Twins) -> None:
        with pytest.raises(RuntimeError):
            async with twins.locks.lease("k", LONG):
                raise RuntimeError("executor crashed")
        async with twins.other_locks.lease("k", LONG) as held:
            assert held

    async def test_fencing_tokens_strictly_increase_across_holders(self, twins: Twins) -> None:
        tokens: list[int] = []
        for locks in (twins.locks, twins.other_locks, twins.locks):
            async with locks.lease("k", LONG) as held:
                assert held is not None
                tokens.append(held.token)
                async with twins.other_locks.lease("k", LONG) as refused:
                    assert refused is None
        ttl = 100 * MS
        async with twins.locks.lease("k", ttl) as stale:
            assert stale is not None
            await twins.elapse(ttl + twins.slack)
            async with twins.other_locks.lease("k", LONG) as successor:
                assert successor is not None
                tokens += [stale.token, successor.token]
        assert all(a < b for a, b in itertools.pairwise(tokens)), tokens
        async with twins.locks.lease("another key", LONG) as other_key:
            assert other_key is not None and other_key.key == "another key"

    async def test_a_lapsed_holder_cannot_release_its_successor(self, twins: Twins) -> None:
        ttl = 100 * MS
        stale_lease = twins.locks.lease("k", ttl)
        stale = await stale_lease.__aenter__()
        assert stale is not None
        await twins.elapse(ttl + twins.slack)
        async with twins.other_locks.lease("k", LONG) as successor:
            assert successor is not None and successor.token > stale.token
            await stale_lease.__aexit__(None, None, None)  # the first executor finally finishes
            async with twins.locks.lease("k", LONG) as third:
                assert third is None, "a third executor got the lease the second one holds"
            assert not await twins.locks.renew(stale, LONG)
            assert await twins.other_locks.renew(successor, LONG)

    async def test_renewing_keeps_the_lease_past_its_first_ttl(self, twins: Twins) -> None:
        # On real Redis the waits are real: 800 ms of slack each way, so a loaded machine's pause
        # between two steps cannot lapse the lease (it did with 120 ms, at load 9 on 2 cores).
        ttl = 2000 * MS
        async with twins.locks.lease("k", ttl) as held:
            assert held is not None
            await twins.elapse(1200 * MS)
            assert await twins.locks.renew(held, ttl)
            await twins.elapse(1200 * MS)  # past the first ttl, within the renewed one
            async with twins.other_locks.lease("k", ttl) as other:
                assert other is None
            assert await twins.locks.renew(held, ttl)
        assert not await twins.locks.renew(held, ttl), "a released lease was renewed"
        async with twins.other_locks.lease("k", ttl) as after:
            assert after is not None

    async def test_a_lapsed_lease_cannot_be_renewed(self, twins: Twins) -> None:
        ttl = 100 * MS
        async with twins.locks.lease("k", ttl) as held:
            assert held is not None
            await twins.elapse(ttl + twins.slack)
            assert not await twins.locks.renew(held, LONG)
            async with twins.other_locks.lease("k", LONG) as successor:
                assert successor is not None

    async def test_only_the_holders_token_renews(self, twins: Twins) -> None:
        async with twins.locks.lease("k", LONG) as held:
            assert held is not None
            assert not await twins.locks.renew(Lease("k", held.token + 1), LONG)
            assert not await twins.locks.renew(Lease("k", held.token - 1), LONG)
            assert not await twins.locks.renew(Lease("other", held.token), LONG)
            assert await twins.locks.renew(held, LONG)

    async def test_only_the_first_holder_of_a_key_is_told_it_is_first(self, twins: Twins) -> None:
        for expected in (True, False, False):
            async with twins.locks.lease("k", LONG) as held:
                assert held is not None and held.first is expected
        async with twins.other_locks.lease("another key", LONG) as other_key:
            assert other_key is not None and other_key.first

    async def test_a_fence_counter_that_starts_again_has_a_new_epoch_every_later_holder_sees(
        self, twins: Twins,
    ) -> None:
        """After the data is lost, only the first holder is told `first`; every holder after it
        still learns the counter restarted: its lease's epoch is not the one before the loss, and
        says when the new counter started. (Redis's times are read through a reply: a tolerance.)"""
        tolerance = timedelta(0) if twins.exact else timedelta(milliseconds=250)
        before: list[Lease] = []
        for locks in (twins.locks, twins.other_locks):
            async with locks.lease("k", LONG) as held:
                assert held is not None and held.epoch and held.epoch_started_at is not None
                before.append(held)
        assert before[0].first and not before[1].first
        assert before[1].epoch == before[0].epoch
        assert abs(before[1].epoch_started_at - before[0].epoch_started_at) <= tolerance  # type: ignore[operator]
        await twins.elapse(600 * MS)
        await twins.lose_data()
        after: list[Lease] = []
        for locks in (twins.other_locks, twins.locks, twins.other_locks):
            async with locks.lease("k", LONG) as held:
                assert held is not None and held.epoch_started_at is not None
                after.append(held)
        assert [h.first for h in after] == [True, False, False]
        assert [h.token for h in after] == [1, 2, 3]
        assert {h.epoch for h in after} == {after[0].epoch} and after[0].epoch != before[0].epoch
        restarted = after[0].epoch_started_at
        assert restarted is not None and before[0].epoch_started_at is not None
        assert restarted - before[0].epoch_started_at >= 600 * MS - tolerance
        assert all(abs(h.epoch_started_at - restarted) <= tolerance for h in after)  # type: ignore[operator]
        async with twins.locks.lease("another key", LONG) as other_key:
            assert other_key is not None and other_key.epoch != after[0].epoch

    async def test_a_ttl_must_be_positive(self, twins: Twins) -> None:
        with pytest.raises(ValueError):
            async with twins.locks.lease("k", timedelta(0)):
                pass
        async with twins.locks.lease("k", LONG) as held:
            assert held is not None
            with pytest.raises(ValueError):
                await twins.locks.renew(held, -MS)


# --- request counters ---------------------------------------------------------------------

class TestRequestCounter:
    async def test_allows_up_to_the_limit_then_refuses_until_the_oldest_hit_leaves(self, twins: Twins) -> None:
        window = timedelta(seconds=2)
        results = [await twins.counter.hit("user:alice", window, 3) for _ in range(4)]
        assert [(r.allowed, r.count) for r in results] == [(True, 1), (True, 2), (True, 3), (False, 3)]
        assert all(r.retry_after == timedelta(0) for r in results[:3])
        refused = results[3]
        assert timedelta(0) < refused.retry_after <= window
        if twins.exact:
            assert refused.retry_after == window
        else:
            assert refused.retry_after > window - 500 * MS
        bob = await twins.counter.hit("user:bob", window, 3)
        assert (bob.allowed, bob.count) == (True, 1)

    async def test_refused_hits_are_not_counted(self, twins: Twins) -> None:
        window = 400 * MS
        assert (await twins.counter.hit("k", window, 1)).allowed
        await twins.elapse(150 * MS)
        refusals = [await twins.counter.hit("k", window, 1) for _ in range(5)]
        assert [r.allowed for r in refusals] == [False] * 5
        if twins.exact:
            assert {r.retry_after for r in refusals} == {250 * MS}
        # Had the refusals been counted, they would fill the window until 150 ms from now.
        await twins.elapse(refusals[-1].retry_after + twins.slack)
        again = await twins.counter.hit("k", window, 1)
        assert (again.allowed, again.count) == (True, 1)

    async def test_the_window_slides(self, twins: Twins) -> None:
        window = timedelta(seconds=1)
        first = await twins.counter.hit("k", window, 2)
        await twins.elapse(300 * MS)
        second = await twins.counter.hit("k", window, 2)
        assert (first.allowed, first.count, second.allowed, second.count) == (True, 1, True, 2)

        refused = await twins.counter.hit("k", window, 2)
        assert not refused.allowed and refused.count == 2
        # Told to wait for the first hit to leave: the window's rest, counted from that hit.
        if twins.exact:
            assert refused.retry_after == 700 * MS
        else:
            assert 300 * MS < refused.retry_after <= 700 * MS

        if twins.exact:
            await twins.elapse(refused.retry_after - US)
            assert not (await twins.counter.hit("k", window, 2)).allowed
            await twins.elapse(US)
        else:
            await twins.elapse(refused.retry_after + twins.slack)
        # The first hit left the window, the second is still in it: one more is allowed.
        third = await twins.counter.hit("k", window, 2)
        assert (third.allowed, third.count) == (True, 2)
        fourth = await twins.counter.hit("k", window, 2)
        assert not fourth.allowed and fourth.count == 2
        if twins.exact:
            assert fourth.retry_after == 300 * MS
        else:
            assert timedelta(0) < fourth.retry_after <= 300 * MS

    async def test_window_and_limit_must_be_positive(self, twins: Twins) -> None:
        with pytest.raises(ValueError):
            await twins.counter.hit("k", timedelta(seconds=1), 0)
        with pytest.raises(ValueError):
            await twins.counter.hit("k", timedelta(0), 5)


# --- event fan-out ------------------------------------------------------------------------

class TestEventFanout:
    async def test_every_subscriber_of_a_user_gets_its_events_in_order_and_no_one_elses(self, twins: Twins) -> None:
        fanout = twins.fanout
        events = [b'{"position":%d,"type":"SnipeOrderFilled"}' % i for i in range(1, 6)]
        async with fanout.subscribe("alice") as first, fanout.subscribe("alice") as second, \
                fanout.subscribe("bob") as bob:
            for event in events:
                await fanout.publish("alice", event)
            await fanout.publish("bob", b"bob-1")
            assert await read(first, 5) == events
            assert await read(second, 5) == events
            # Bob's own event comes first: nothing of Alice's reached him before it.
            assert await read(bob, 1) == [b"bob-1"]

    async def test_only_events_published_after_subscribing_arrive(self, twins: Twins) -> None:
        await twins.fanout.publish("alice", b"before")
        async with twins.fanout.subscribe("alice") as events:
            await twins.fanout.publish("alice", b"after")
            assert await read(events, 1) == [b"after"]

    async def test_publishing_to_no_one_is_fine(self, twins: Twins) -> None:
        await twins.fanout.publish("nobody", b"{}")

    async def test_a_slow_subscriber_does_not_hold_up_the_publisher(self, twins: Twins) -> None:
        events = [b"%05d:" % i + b"x" * 200 for i in range(2000)]
        async with twins.fanout.subscribe("alice") as slow:
            async with asyncio.timeout(5):
                for event in events:
                    await twins.fanout.publish("alice", event)  # nobody reads meanwhile
            assert await read(slow, len(events)) == events

    async def test_leaving_ends_the_iteration_and_the_delivery(self, twins: Twins) -> None:
        async with twins.fanout.subscribe("alice") as events:
            pass
        await twins.fanout.publish("alice", b"later")
        with pytest.raises(StopAsyncIteration):
            await anext(events)


# --- Redis only ---------------------------------------------------------------------------

@pytest.mark.redis
class TestOnRedisOnly:
    def test_a_client_decoding_replies_to_str_is_refused(self, redis_url: str) -> None:
        decoding = Redis.from_url(redis_url, decode_responses=True)
        for adapter in (RedisCache, RedisLockService, RedisRequestCounter, RedisEventFanout):
            with pytest.raises(ValueError, match="decode_responses"):
                adapter(decoding, "sniper-test")
        with pytest.raises(ValueError, match="prefix"):
            RedisCache(redis_client(redis_url), "")

    async def test_keys_and_channels_carry_the_deployment_prefix(self, redis_url: str) -> None:
        client = redis_client(redis_url)
        prefix = "sniper-test-prefix-check"
        try:
            await RedisCache(client, prefix).set("k", b"v")
            async with RedisLockService(client, prefix).lease("snipe:t-1", LONG):
                await RedisRequestCounter(client, prefix).hit("user:alice", timedelta(seconds=5), 1)
                keys = sorted([key async for key in client.scan_iter(match=f"{prefix}:*")])
            assert keys == [
                f"{prefix}:cache:k".encode(),
                f"{prefix}:fence-epoch:snipe:t-1".encode(),
                f"{prefix}:fence:snipe:t-1".encode(),
                f"{prefix}:lock:snipe:t-1".encode(),
                f"{prefix}:rate:log:user:alice".encode(),
                f"{prefix}:rate:seq:user:alice".encode(),
            ]
            async with RedisEventFanout(client, prefix).subscribe("alice") as events:
                await client.publish(f"{prefix}:events:alice", b"raw")
                assert await read(events, 1) == [b"raw"]
        finally:
            await delete_prefixed(client, prefix)
            await client.aclose()

    async def test_every_subscriber_of_a_process_shares_one_connection(self, redis_url: str) -> None:
        """A pub/sub connection per subscriber lets one user's open streams use up the pool,
        and with it every other command of the process."""
        prefix = f"h8-{secrets.token_hex(6)}"
        client = Redis.from_url(redis_url, max_connections=4, client_name=prefix)
        admin = redis_client(redis_url)

        async def listening() -> int:
            return sum(1 for c in await admin.client_list(_type="pubsub") if c["name"] == prefix)

        try:
            fanout = RedisEventFanout(client, prefix)
            async with contextlib.AsyncExitStack() as stack:
                flood = [await stack.enter_async_context(fanout.subscribe("mallory")) for _ in range(50)]
                alice = await stack.enter_async_context(fanout.subscribe("alice"))
                assert await listening() == 1
                assert await client.ping()  # the pool still has room for everyone else
                await fanout.publish("mallory", b"m")
                await fanout.publish("alice", b"a")
                assert await read(alice, 1) == [b"a"]
                for events in flood:
                    assert await read(events, 1) == [b"m"]
            async with asyncio.timeout(5):  # the last subscriber gone, so is the connection
                while await listening():
                    await asyncio.sleep(0.02)
        finally:
            await admin.aclose()
            await client.aclose()

    async def test_a_command_finding_every_connection_busy_waits_for_one(self, redis_url: str) -> None:
        """REDIS_MAX_CONNECTIONS bounds the pool; a command past it waits (REDIS_POOL_TIMEOUT_SECONDS)
        for a connection to come free instead of failing at once with everyone else's."""
        name = f"h8-{secrets.token_hex(6)}"
        client, admin = redis_client(redis_url, name=name, max_connections=2, pool_timeout=30), redis_client(redis_url)
        try:
            busy = [asyncio.create_task(client.blpop([f"{name}:nothing"], timeout=3)) for _ in range(2)]
            async with asyncio.timeout(3):  # until both connections wait in BLPOP
                while sum(1 for c in await admin.client_list() if c["name"] == name and c["cmd"] == "blpop") < 2:
                    await asyncio.sleep(0.01)
            assert await client.ping()
            assert await asyncio.gather(*busy) == [None, None]
        finally:
            await admin.aclose()
            await client.aclose()

    async def test_a_subscriber_too_far_behind_is_dropped_after_what_it_had(self, redis_url: str) -> None:
        prefix = f"h8-{secrets.token_hex(6)}"
        client = redis_client(redis_url)
        try:
            fanout = RedisEventFanout(client, prefix, max_pending=3)
            async with fanout.subscribe("alice") as slow, fanout.subscribe("alice") as keeping_up:
                for event in (b"1", b"2", b"3"):
                    await fanout.publish("alice", event)
                assert await read(keeping_up, 3) == [b"1", b"2", b"3"]
                await fanout.publish("alice", b"4")  # one too many for the slow one
                assert await read(keeping_up, 1) == [b"4"]
                assert await read(slow, 3) == [b"1", b"2", b"3"]
                with pytest.raises(SubscriptionLost):
                    await read(slow, 1)
        finally:
            await client.aclose()

    @pytest.mark.parametrize("retries", [False, True], ids=["our client, no retries", "a client retrying 3 times"])
    async def test_a_broken_subscriber_connection_ends_with_subscription_lost(
        self, redis_url: str, retries: bool,
    ) -> None:
        """Events published while the subscriber was cut off are gone. A client built with
        retries (not ours: see CONNECTION_POLICY) reconnects and subscribes again by itself; the
        subscription must still end with SubscriptionLost rather than carry on past the gap."""
        prefix = f"sniper-test-{secrets.token_hex(6)}"
        # Named connections, so that this subscriber's connection (and only it) can be cut.
        if retries:
            client = Redis.from_url(redis_url, client_name=prefix, retry=Retry(NoBackoff(), 3))
        else:
            client = redis_client(redis_url, name=prefix)
        admin = redis_client(redis_url)
        try:
            fanout = RedisEventFanout(client, prefix)
            async with fanout.subscribe("alice") as events:
                await fanout.publish("alice", b"1")
                assert await read(events, 1) == [b"1"]
                [subscriber] = [c["id"] for c in await admin.client_list(_type="pubsub") if c["name"] == prefix]
                assert await admin.client_kill_filter(_id=subscriber) == 1
                await fanout.publish("alice", b"lost: nobody is subscribed")
                with pytest.raises(SubscriptionLost):
                    await read(events, 1)
                await fanout.publish("alice", b"3")
                with pytest.raises(SubscriptionLost):
                    await read(events, 1)  # stays lost
        finally:
            await admin.aclose()
            await client.aclose()


@pytest.mark.redis
async def test_a_fence_counter_kept_from_before_epochs_gets_one_at_its_next_take(redis_url: str) -> None:
    """A counter written before leases had epochs (or whose epoch key alone was evicted) goes on
    counting; its next take starts an epoch, then, which every later holder shares."""
    prefix = f"h1-test-{secrets.token_hex(6)}"
    client = redis_client(redis_url)
    locks = RedisLockService(client, prefix)
    try:
        await client.set(f"{prefix}:fence:k", 41)
        async with locks.lease("k", LONG) as held:
            assert held is not None and held.token == 42 and not held.first and held.epoch
        async with locks.lease("k", LONG) as next_holder:
            assert next_holder is not None and next_holder.token == 43 and next_holder.epoch == held.epoch
    finally:
        await delete_prefixed(client, prefix)
        await client.aclose()


@pytest.mark.redis
async def test_after_redis_lost_its_data_the_next_holder_is_first_and_the_old_one_cannot_renew(redis_url: str) -> None:
    """A Redis restart without persistence (or a flush) forgets the lease and the fence counter:
    the next holder gets the old holder's token again. It is told it is first (an earlier holder
    may still believe in its lease), and the old holder's renewal is refused (its nonce differs)."""
    prefix = f"h11-test-{secrets.token_hex(6)}"
    client = redis_client(redis_url)
    locks = RedisLockService(client, prefix)
    try:
        old = locks.lease("k", LONG)
        before = await old.__aenter__()
        assert before is not None
        await delete_prefixed(client, prefix)  # the data is gone
        async with locks.lease("k", LONG) as after:
            assert after is not None and after.first and after.token == before.token
            assert not await locks.renew(before, LONG)
            assert await locks.renew(after, LONG)
        await old.__aexit__(None, None, None)
    finally:
        await delete_prefixed(client, prefix)
        await client.aclose()
