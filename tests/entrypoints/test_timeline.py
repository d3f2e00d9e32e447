"""The history's line for each kind of event (entrypoints/timeline.py): a fee learnt after the fill."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from domain.events import EntryFeeLearnt, Recorded
from entrypoints.timeline import describe

AT = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fee", "asset", "quantity", "cost", "pnl", "text"),
    [
        ("0.016665", "NEW", "0.016665", "0", "0", "entry fee learnt: 0.016665 NEW (holding 0.016665 less)"),
        ("0.01", "USDT", "0", "0.01", "0", "entry fee learnt: 0.01 USDT (cost 0.01 more)"),
        ("0.01", "USDT", "0", "0.01", "-0.01", "entry fee learnt: 0.01 USDT (cost 0.01 more, P&L -0.0100)"),
        ("0.2", "MX", "0", "0", "0", "entry fee learnt: 0.2 MX (nothing to adjust)"),
    ],
)
def test_a_fee_learnt_after_the_fill_says_what_it_changed(
    fee: str, asset: str, quantity: str, cost: str, pnl: str, text: str
) -> None:
    event = EntryFeeLearnt("pos-1", Decimal(fee), asset, Decimal(quantity), Decimal(cost), Decimal(pnl))
    assert describe(Recorded("position-pos-1", 3, AT, "alice", "t", event))[1] == text
