"""Postgres: appends run concurrently (group commit), yet a reader following the global order
never skips an event that commits after a later-positioned one could have been read.

The first test makes one append slow *inside* its insert (a trigger sleeps after the row got
its position, before the commit) while another store appends: if positions were not handed out
in commit order, the follower would read the fast event, move past the slow one's position and
never see it. The second runs many writers against a paging reader and a following projector.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.eventstore.migrate import upgrade
from adapters.eventstore.sqlalchemy_store import SqlEventStore, make_engine
from adapters.projections import SqlProjector
from application.errors import ConcurrencyConflict
from domain.events import Recorded, SnipeFailed

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
# Sleeps after the row got its position (the column default) and before it is written.
SLOW_TRIGGER = (
    """CREATE FUNCTION slow_insert() RETURNS trigger AS $$
    BEGIN
        IF NEW.stream_id LIKE 'slow-%' THEN PERFORM pg_sleep(0.4); END IF;
        RETURN NEW;
    END $$ LANGUAGE plpgsql""",
    "CREATE TRIGGER slow_insert BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION slow_insert()",
)


def rec(stream_id: str, version: int) -> Recorded:
    return Recorded(stream_id, version, T0, "user-1", "corr", SnipeFailed(f"t-{stream_id}-{version}", "no"))


@pytest.fixture
async def engines(fresh_postgres_database: str) -> AsyncIterator[list[AsyncEngine]]:
    """Several engines on one fresh database: one store (and so one group queue) each."""
    made = [make_engine(fresh_postgres_database) for _ in range(4)]
    try:
        await upgrade(made[0])
        yield made
    finally:
        for engine in made:
            await engine.dispose()


async def follow(store: SqlEventStore, stop: asyncio.Event, seen: list[Recorded]) -> None:
    """Page through the global order as a subscriber does: after the last position read."""
    while True:
        stopping = stop.is_set()  # read once more after the last append returned
        after = seen[-1].position if seen else 0
        seen += await store.read_all(after=after or 0, limit=5)
        if stopping:
            rest = await store.read_all(after=seen[-1].position if seen else 0)
            seen += rest
            return
        await asyncio.sleep(0.002)


async def test_an_append_committing_late_is_not_skipped_by_a_follower(engines: list[AsyncEngine]) -> None:
    async with engines[0].begin() as conn:
        for statement in SLOW_TRIGGER:
            await conn.execute(text(statement))
    slow_store, fast_store, reader = (SqlEventStore(e) for e in engines[:3])
    stop, seen = asyncio.Event(), []
    follower = asyncio.create_task(follow(reader, stop, seen))

    slow = asyncio.create_task(slow_store.append([rec("slow-a", 1)]))
    await asyncio.sleep(0.1)  # the slow append is inside its insert now
    fast = await fast_store.append([rec("fast-b", 1), rec("fast-b", 2)])
    [late] = await slow
    stop.set()
    await follower

    assert [r.stream_id for r in seen] == ["slow-a", "fast-b", "fast-b"]
    assert seen == [late, *fast] == await reader.read_all()
    assert late.position is not None and fast[0].position is not None and late.position < fast[0].position


async def test_concurrent_writers_a_paging_reader_and_a_projector_miss_nothing(engines: list[AsyncEngine]) -> None:
    stores = [SqlEventStore(e, max_writers=1) for e in engines[:3]]  # three processes, one insert in flight each
    reader = SqlEventStore(engines[3])
    projector = SqlProjector(engines[3], batch=7)
    rng = random.Random(7)
    appended: list[Recorded] = []
    conflicts = appends = 0

    async def writer(w: int) -> None:
        nonlocal conflicts, appends
        store = stores[w % len(stores)]
        versions: dict[str, int] = {}
        for _ in range(25):
            stream = f"w{w}-s{rng.randrange(3)}"
            size = rng.randint(1, 4)
            start = versions.get(stream, 0)
            appended.extend(await store.append([rec(stream, start + i + 1) for i in range(size)]))
            versions[stream] = start + size
            appends += 1
            if rng.random() < 0.2:  # a stale writer loses, and writes nothing
                try:
                    await store.append([rec(stream, start + 1)])
                except ConcurrencyConflict:
                    conflicts += 1
            await asyncio.sleep(rng.random() / 500)

    stop, seen = asyncio.Event(), []
    follower = asyncio.create_task(follow(reader, stop, seen))
    projecting = asyncio.create_task(projector.follow(poll_interval=0.005, stop=stop))
    await asyncio.gather(*(writer(w) for w in range(12)))
    stop.set()
    await follower
    applied = await projecting + await projector.catch_up()

    everything = await reader.read_all()
    assert len(everything) == len(appended) > 12 * 25
    assert sorted(appended, key=lambda r: r.position or 0) == everything
    assert seen == everything  # in order, nothing skipped, nothing twice
    assert applied == len(everything)
    assert await projector.checkpoint() == everything[-1].position
    assert conflicts > 0
    assert sum(s.group_transactions for s in stores) < appends  # appends were grouped
