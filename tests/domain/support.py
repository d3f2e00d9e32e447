"""Helpers for the domain tests: fixed, aware times and causes. No clock is ever read."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from domain.aggregate import Aggregate
from domain.events import Cause, Recorded

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds: float = 0) -> datetime:
    return T0 + timedelta(seconds=seconds)


def cause(seconds: float = 0, correlation_id: str = "corr-1") -> Cause:
    return Cause(at=at(seconds), correlation_id=correlation_id)


def D(text: str) -> Decimal:
    return Decimal(text)


def type_names(records: Iterable[Recorded]) -> list[str]:
    return [r.event.type_name for r in records]


def state_of(aggregate: Aggregate) -> dict[str, object]:
    """Everything an aggregate knows, except the events it has yet to save."""
    return {k: v for k, v in vars(aggregate).items() if k != "_pending"}
