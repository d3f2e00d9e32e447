"""Event-sourced aggregate base: state is a fold over the aggregate's own events."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, Self

from domain.events import Cause, DomainEvent, Recorded


class Aggregate:
    """Subclasses implement `_apply` for each event and record new ones with `_record`."""

    kind: ClassVar[str] = "aggregate"

    def __init__(self, stream_id: str, user_id: str) -> None:
        self.stream_id = stream_id
        self.user_id = user_id
        self.version = 0
        self._pending: list[Recorded] = []

    @classmethod
    def rehydrate(cls, stream_id: str, history: Iterable[Recorded]) -> Self:
        agg = cls.__new__(cls)
        Aggregate.__init__(agg, stream_id, "")
        agg._blank()
        for rec in history:
            if rec.version != agg.version + 1:
                raise ValueError(f"stream {stream_id} skips from version {agg.version} to {rec.version}")
            agg.user_id = rec.user_id
            agg._apply(rec.event)
            agg.version = rec.version
        return agg

    def _blank(self) -> None:
        """Set the state fields to what they are before the first event."""
        raise NotImplementedError

    def _apply(self, event: DomainEvent) -> None:
        raise NotImplementedError

    def _record(self, event: DomainEvent, cause: Cause) -> None:
        self._apply(event)
        self.version += 1
        self._pending.append(
            Recorded(
                stream_id=self.stream_id,
                version=self.version,
                occurred_at=cause.at,
                user_id=self.user_id,
                correlation_id=cause.correlation_id,
                event=event,
            )
        )

    @property
    def pending(self) -> list[Recorded]:
        return list(self._pending)

    @property
    def expected_version(self) -> int:
        """The version the stream had when this aggregate was loaded."""
        return self.version - len(self._pending)

    def mark_saved(self) -> None:
        self._pending.clear()
