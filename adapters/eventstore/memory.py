"""The in-memory event store: the reference behaviour every store must match.

Snapshots are kept as the SQL store keeps them, encoded (snapshot_codec), so a restored
aggregate never shares a mutable value with the one the snapshot was taken of."""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import replace

from adapters.eventstore.snapshot_codec import encode_state, read_snapshot
from application.errors import ConcurrencyConflict
from domain.events import Recorded

DEFAULT_SNAPSHOT_EVERY = 100


class InMemoryEventStore:
    def __init__(self, snapshot_every: int = DEFAULT_SNAPSHOT_EVERY) -> None:
        if snapshot_every < 0:
            raise ValueError(f"snapshot_every must be 0 (never) or more, got {snapshot_every}")
        self.snapshot_every = snapshot_every
        self._snapshots: dict[str, tuple[int, str, str]] = {}
        self._all: list[Recorded] = []
        self._streams: dict[str, list[Recorded]] = {}
        self._users: dict[str, list[Recorded]] = {}
        self._lock = asyncio.Lock()

    async def append(self, events: Sequence[Recorded]) -> list[Recorded]:
        async with self._lock:
            versions: dict[str, int] = {}
            for ev in events:
                current = versions.get(ev.stream_id, len(self._streams.get(ev.stream_id, ())))
                if ev.version != current + 1:
                    raise ConcurrencyConflict(ev.stream_id, ev.version - 1, current)
                versions[ev.stream_id] = ev.version
            stored = []
            for ev in events:
                rec = replace(ev, position=len(self._all) + 1)
                self._all.append(rec)
                self._streams.setdefault(ev.stream_id, []).append(rec)
                self._users.setdefault(ev.user_id, []).append(rec)
                stored.append(rec)
            return stored

    async def load(self, stream_id: str) -> list[Recorded]:
        return list(self._streams.get(stream_id, ()))

    async def read_all(self, after: int = 0, limit: int | None = None) -> list[Recorded]:
        if limit is not None and limit < 0:
            return []
        chunk = self._all[max(after, 0):]
        return list(chunk if limit is None else chunk[:limit])

    async def read_user(self, user_id: str, after: int = 0, limit: int | None = None) -> list[Recorded]:
        if limit is not None and limit < 0:
            return []
        mine = self._users.get(user_id, [])
        start = bisect_right(mine, after, key=lambda r: r.position or 0)
        return mine[start:] if limit is None else mine[start:start + limit]

    async def last_position(self) -> int:
        return len(self._all)

    async def load_snapshot(self, stream_id: str, shape: str) -> tuple[int, dict[str, object]] | None:
        kept = self._snapshots.get(stream_id)
        return None if kept is None else read_snapshot(*kept, shape)

    async def save_snapshot(self, stream_id: str, version: int, shape: str, state: dict[str, object]) -> None:
        encoded = encode_state(shape, state)
        kept = self._snapshots.get(stream_id)
        if kept is None or kept[0] < version or kept[1] != shape:
            self._snapshots[stream_id] = (version, shape, encoded)

    async def load_from(self, stream_id: str, version: int) -> list[Recorded]:
        return [rec for rec in self._streams.get(stream_id, ()) if rec.version >= version]
