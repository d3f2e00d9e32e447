"""Event-sourced aggregate base: state is a fold over the aggregate's own events.

A snapshot is that fold at one version: `snapshot_state()` gives the state's fields by name,
`restore()` puts them back into a blank aggregate and folds the events after. Which fields an
aggregate has is what `_blank` sets, so `snapshot_shape()` names them (with the class and its
`snapshot_version`); a snapshot of another shape is not used.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import ClassVar, Self

from domain.events import Cause, DomainEvent, Recorded

# What every aggregate has besides its state: never part of a snapshot's state.
_BOOKKEEPING = frozenset({"stream_id", "version", "_pending"})


class SnapshotMismatch(ValueError):
    """A snapshot's state does not fit this aggregate's fields: fold from the first event instead."""


class Aggregate:
    """Subclasses implement `_apply` for each event and record new ones with `_record`."""

    kind: ClassVar[str] = "aggregate"
    # Bump when a state field keeps its name but changes its meaning: older snapshots are then ignored.
    snapshot_version: ClassVar[int] = 1

    def __init__(self, stream_id: str, user_id: str) -> None:
        self.stream_id = stream_id
        self.user_id = user_id
        self.version = 0
        self._pending: list[Recorded] = []

    @classmethod
    def rehydrate(cls, stream_id: str, history: Iterable[Recorded]) -> Self:
        agg = cls._blank_of(stream_id)
        agg._fold(history)
        return agg

    @classmethod
    def restore(cls, stream_id: str, version: int, state: Mapping[str, object], history: Iterable[Recorded]) -> Self:
        """The aggregate as of a snapshot (its `version` and `state`), then the events after it.
        Raises SnapshotMismatch when the state's fields, or the type of a field that has a value
        when blank, are not this aggregate's."""
        agg = cls._blank_of(stream_id)
        blank = agg.snapshot_state()
        if set(state) != set(blank):
            raise SnapshotMismatch(f"{cls.__name__} has fields {sorted(blank)}, the snapshot {sorted(state)}")
        for name, value in state.items():
            default = blank[name]
            if default is not None and type(value) is not type(default):
                raise SnapshotMismatch(
                    f"{cls.__name__}.{name} is a {type(default).__name__}, not {type(value).__name__}"
                )
            setattr(agg, name, value)
        if version < 1:
            raise SnapshotMismatch(f"a snapshot is taken after an event, not at version {version}")
        agg.version = version
        agg._fold(history)
        return agg

    @classmethod
    def snapshot_shape(cls) -> str:
        """What a snapshot of this aggregate holds: class, snapshot version and field names."""
        return f"{cls.__name__}/{cls.snapshot_version}:" + ",".join(sorted(cls._blank_of("").snapshot_state()))

    def snapshot_state(self) -> dict[str, object]:
        """The folded state by field name, the values themselves (encode them before changing any)."""
        if self._pending:
            raise ValueError(f"stream {self.stream_id}: save the pending events before taking a snapshot")
        return {name: value for name, value in vars(self).items() if name not in _BOOKKEEPING}

    @classmethod
    def _blank_of(cls, stream_id: str) -> Self:
        agg = cls.__new__(cls)
        Aggregate.__init__(agg, stream_id, "")
        agg._blank()
        return agg

    def _fold(self, history: Iterable[Recorded]) -> None:
        for rec in history:
            if rec.version != self.version + 1:
                raise ValueError(f"stream {self.stream_id} skips from version {self.version} to {rec.version}")
            self.user_id = rec.user_id
            self._apply(rec.event)
            self.version = rec.version

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
