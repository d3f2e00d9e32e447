"""What the read models answer with: views of the trade history, in the quote asset.

The in-memory trade book (application/trade_book.py) folds events into these, and so do the
persistent projections (adapters/projections/): both must give equal views of equal histories.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal


@dataclass(slots=True)
class ListingView:
    coin_id: str
    ticker: str
    symbol: str
    launch_at: datetime
    ready: bool = False


@dataclass(slots=True)
class TargetView:
    target_id: str
    user_id: str
    coin_id: str
    symbol: str
    launch_at: datetime
    quote_amount: Decimal
    exit_strategy: str
    status: str = "watching"
    confidence: Decimal = Decimal(0)
    execute_at: datetime | None = None
    reason: str | None = None
    live: bool = False  # real money on the exchange, else paper
    max_entry_price: Decimal | None = None  # the entry's price cap (an IOC limit buy); None: a market buy


@dataclass(slots=True)
class PositionView:
    position_id: str
    target_id: str
    user_id: str
    symbol: str
    entry_price: Decimal
    quantity: Decimal
    remaining: Decimal
    cost: Decimal
    remaining_cost: Decimal
    proceeds: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    realised_pnl: Decimal = Decimal(0)
    status: str = "open"
    last_exit: str | None = None
    opened_at: datetime | None = None
    closed_at: datetime | None = None
    exits: list[str] = field(default_factory=list)
    quote_asset: str = "USDT"


@dataclass(frozen=True, slots=True)
class DailyPnl:
    """P&L a user realised on one (UTC) day: the sum of the realised P&L of their exit fills (and of
    the entry fees learnt after their position closed, on the day learnt: EntryFeeLearnt)."""

    user_id: str
    day: date
    realised_pnl: Decimal


BUY = "BUY"
SELL = "SELL"
# Coins that left a position unsold (DustWrittenOff): below the pair's step or minimum, or not in
# the account. Not a sale: no price, no proceeds, no order.
WRITE_OFF = "WRITE_OFF"
# A buy's fee learnt after its fill was recorded without it (EntryFeeLearnt). Not a fill: no order.
ENTRY_FEE = "FEE"


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """One fill of a user's trade history: the entry that opened a position, or an exit.

    `position` is the global position of the event that recorded the fill: it orders the
    history and is the cursor to page it. For a BUY, `quantity` is what the position holds
    (a fee paid in the base asset is already taken off), `quote_amount` what it cost (a fee
    paid in the quote asset included) and `client_order_id` is None; for a SELL,
    `quote_amount` is the proceeds before the fee, the fee is in the quote asset, and
    `realised_pnl` is proceeds - fee - the cost the sold quantity released. A WRITE_OFF
    (event_type DustWrittenOff) sold nothing: `quantity` is what was written off, price,
    `quote_amount` and fee are 0, `client_order_id` is None (no order), and `realised_pnl` is
    minus the cost it released. A FEE (event_type EntryFeeLearnt) is a buy's fee learnt after its
    BUY was recorded with the fee unknown (fee 0, fee_asset ""): `fee` and `fee_asset` are the fee,
    `quantity` the coins it took from what the position holds, `quote_amount` what it added to the
    position's cost, `realised_pnl` what it took from the P&L of a position already closed; price 0,
    `client_order_id` None.
    """

    position: int
    occurred_at: datetime
    user_id: str
    position_id: str
    target_id: str
    symbol: str
    side: str  # BUY, SELL, WRITE_OFF or FEE
    event_type: str  # PositionOpened, TakeProfitHit, StopLossHit, ..., EntryFeeLearnt
    price: Decimal
    quantity: Decimal
    quote_amount: Decimal
    fee: Decimal
    fee_asset: str
    realised_pnl: Decimal = Decimal(0)
    client_order_id: str | None = None
