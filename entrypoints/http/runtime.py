"""What the API process runs besides answering requests: keeping the SQL projections current,
relaying recorded events to the live streams, and answering the readiness probe."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.eventstore.migrate import SchemaStatus, schema_state
from adapters.projections import SqlProjector
from application.ports import EventFanout, EventStore, LockService
from entrypoints.http.cache import CachedReadModels
from entrypoints.http.schemas import ReadinessCheck, event_json

log = logging.getLogger("sniper.http")


class ReadModelRefresh:
    """After a write, bring the SQL projections up to it, so the writer reads its own write.
    (The in-memory read models catch up on every read: nothing to do.)"""

    def __init__(self, projector: SqlProjector | None, cached: CachedReadModels | None = None) -> None:
        self._projector = projector
        self._cached = cached

    async def __call__(self) -> None:
        if self._projector is not None:
            await self._projector.catch_up()
        if self._cached is not None:
            self._cached.invalidate()


@dataclass(frozen=True)
class ReadinessProbe:
    """Ready = the database answers, its schema is the one this program needs, and Redis
    (when configured) answers PING."""

    engine: AsyncEngine | None
    redis: Redis | None

    async def checks(self) -> list[ReadinessCheck]:
        found = []
        if self.engine is None:
            found.append(ReadinessCheck("database", True, "memory:// (nothing kept)"))
        else:
            found.append(await _check("database", self._database(self.engine)))
        if self.redis is not None:
            found.append(await _check("redis", self._redis(self.redis)))
        return found

    async def _database(self, engine: AsyncEngine) -> str:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        state = await schema_state(engine)
        if state.status is not SchemaStatus.CURRENT:
            raise RuntimeError(f"schema {state.status.value} ({state.revision or 'none'}, need {state.head})")
        return f"schema {state.revision}"

    async def _redis(self, redis: Redis) -> str:
        await redis.ping()
        return "PONG"


async def _check(name: str, probe) -> ReadinessCheck:  # noqa: ANN001
    try:
        detail = await asyncio.wait_for(probe, timeout=2.0)
    except RuntimeError as exc:
        return ReadinessCheck(name, False, str(exc))
    except Exception as exc:  # noqa: BLE001 - any failure is "not ready"; the detail stays generic
        log.warning("readiness check %s failed: %r", name, exc)
        return ReadinessCheck(name, False, f"unreachable ({type(exc).__name__})")
    return ReadinessCheck(name, True, detail)


async def follow_projections(projector: SqlProjector, stop: asyncio.Event, poll: float = 0.02) -> None:
    """Keep the projections current with what other processes (the worker) record (polled every
    20 ms when caught up: bench.persistence shows the lag this keeps under load). A database
    error pauses the loop briefly; the checkpoint makes the next round resume exactly."""
    while not stop.is_set():
        try:
            await projector.follow(poll_interval=poll, stop=stop)
        except Exception as exc:  # noqa: BLE001 - keep following; readiness reports the database
            log.warning("projector stopped (%r); resuming in 2 s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=2.0)


RELAY_LEASE = "http:event-relay"
RELAY_LEASE_TTL = timedelta(seconds=30)


async def relay_events(
    store: EventStore, fanout: EventFanout, locks: LockService, stop: asyncio.Event, poll: float = 0.2
) -> None:
    """Publish every newly recorded event to its user's live subscribers. One relay at a time
    holds the lease (several API processes share one Redis); the others wait to take over."""
    position = await store.last_position()
    while not stop.is_set():
        async with locks.lease(RELAY_LEASE, RELAY_LEASE_TTL) as lease:
            if lease is not None:
                position = await _relay_while_held(store, fanout, locks, lease, stop, poll, position)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=poll * 5)


async def _relay_while_held(store, fanout, locks, lease, stop, poll, position):  # noqa: ANN001, ANN202
    renew_every = RELAY_LEASE_TTL.total_seconds() / 3
    loop = asyncio.get_running_loop()
    renewed_at = loop.time()
    while not stop.is_set():
        if loop.time() - renewed_at > renew_every:
            if not await locks.renew(lease, RELAY_LEASE_TTL):
                return position
            renewed_at = loop.time()
        try:
            for rec in await store.read_all(after=position, limit=500):
                position = max(position, rec.position or 0)
                await fanout.publish(rec.user_id, event_json(rec))
        except Exception as exc:  # noqa: BLE001 - the stream is best effort; the store is the truth
            log.warning("event relay paused: %r", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=poll)
    return position


@contextlib.asynccontextmanager
async def background(*jobs) -> AsyncIterator[None]:  # noqa: ANN002
    """Run coroutine factories taking a stop event until the block ends."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(job(stop)) for job in jobs]
    try:
        yield
    finally:
        stop.set()
        for task in tasks:
            try:
                await asyncio.wait_for(task, timeout=5)
            except (Exception, asyncio.CancelledError):  # noqa: BLE001
                task.cancel()

