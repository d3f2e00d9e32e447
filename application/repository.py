"""Loading aggregates from the event store and saving what they recorded.

When the store keeps snapshots (SnapshotStore), loading starts from the newest snapshot of the
aggregate's current shape and folds only the events after it; saving takes a new snapshot each
time a stream's version passes a multiple of the store's `snapshot_every`. A snapshot is never
trusted over the history: one of another shape, one that does not fit the aggregate, or one
whose version the stream does not hold is passed over, and the whole stream is folded.
"""

from __future__ import annotations

import logging
from typing import TypeVar

from application.errors import NotFound
from application.ports import EventStore, SnapshotStore
from domain.aggregate import Aggregate
from domain.events import Recorded

A = TypeVar("A", bound=Aggregate)

_log = logging.getLogger(__name__)


async def find(store: EventStore, cls: type[A], stream_id: str) -> A | None:
    if isinstance(store, SnapshotStore):
        restored = await _from_snapshot(store, cls, stream_id)
        if restored is not None:
            return restored
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
    versions_before = [agg.expected_version for agg in aggregates]
    stored = await store.append(pending)
    for agg in aggregates:
        agg.mark_saved()
    if isinstance(store, SnapshotStore) and store.snapshot_every > 0:
        for agg, before in zip(aggregates, versions_before, strict=True):
            if agg.version // store.snapshot_every > before // store.snapshot_every:
                await _take_snapshot(store, agg)
    return stored


async def _from_snapshot(store: SnapshotStore, cls: type[A], stream_id: str) -> A | None:
    snapshot = await store.load_snapshot(stream_id, cls.snapshot_shape())
    if snapshot is None:
        return None
    version, state = snapshot
    tail = await store.load_from(stream_id, version)
    if not tail or tail[0].version != version:  # the stream does not hold the snapshot's version
        _log.warning("snapshot of %s at version %s does not match its stream: folding all events", stream_id, version)
        return None
    try:
        return cls.restore(stream_id, version, state, tail[1:])
    except (ValueError, TypeError) as exc:
        _log.warning("snapshot of %s at version %s not used (%s): folding all events", stream_id, version, exc)
        return None


async def _take_snapshot(store: SnapshotStore, agg: Aggregate) -> None:
    """After the append committed: a failure here costs the next load time, never the save."""
    try:
        await store.save_snapshot(agg.stream_id, agg.version, type(agg).snapshot_shape(), agg.snapshot_state())
    except Exception as exc:  # noqa: BLE001 - the events are stored; the snapshot is only a cache
        _log.warning("no snapshot of %s at version %s: %s", agg.stream_id, agg.version, exc)
