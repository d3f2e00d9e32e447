"""Tiny hand-made recordings for backtest tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from application.ports import ListingRecording, RecordedPrice
from domain.values import Symbol

LAUNCH = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def recording(
    path: Sequence[tuple[int | str, str]],
    symbol: str = "NEWUSDT",
    launch_at: datetime = LAUNCH,
    quote_amount: str = "100",
    quantity_scale: int = 2,
) -> ListingRecording:
    """`path`: (seconds after launch, price) pairs."""
    points = tuple(
        RecordedPrice(launch_at + timedelta(milliseconds=int(Decimal(str(t)) * 1000)), Decimal(p)) for t, p in path
    )
    return ListingRecording(f"{symbol.lower()}.json", Symbol.parse(symbol), launch_at, Decimal(quote_amount),
                            quantity_scale, points)


class ListSource:
    """RecordingSource over recordings held in memory; counts how often it is read."""

    def __init__(self, *recordings: ListingRecording) -> None:
        self.items = list(recordings)
        self.reads = 0

    def recordings(self) -> list[ListingRecording]:
        self.reads += 1
        return list(self.items)
