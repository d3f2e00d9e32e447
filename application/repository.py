"""Loading aggregates from the event store and saving what they recorded."""

from __future__ import annotations

from typing import TypeVar

from application.errors import NotFound
from application.ports import EventStore
from domain.aggregate import Aggregate
from domain.events import Recorded

A = TypeVar("A", bound=Aggregate)


async def find(store: EventStore, cls: type[A], stream_id: str) -> A | None:
    history = await store.load(stream_id)
    return cls.rehydrate(stream_id, history) if history else None


async def get(store: EventStore, cls: type[A], stream_id: str) -> A:
    found = await find(store, cls, stream_id)
    if found is None:
        raise NotFound(f"no {cls.kind} with stream {stream_id}")
    return found


async def save(store: EventStore, *aggregates: Aggregate) -> list[Recorded]:
    """Append every aggregate's new events in one all-or-nothing append."""
    pending = [rec for agg in aggregates for rec in agg.pending]
    if not pending:
        return []
    stored = await store.append(pending)
    for agg in aggregates:
        agg.mark_saved()
    return stored
