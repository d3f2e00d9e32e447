"""MEXC's REST shapes, read defensively into typed values. Amounts are Decimal, never float.

MEXC sends most amounts as strings and some as JSON numbers; precisions are ints or
strings; `status` is "1"/"2"/"3" or the older "ENABLED". Anything unreadable becomes
UnexpectedReply (an AmbiguousOutcome) rather than a raw KeyError or ValueError.

Every number is bounded as it is read, before any arithmetic: a precision of "1E+1000000"
is a valid decimal, and turning it into an int held the event loop for half a minute. The
bounds (see `decimal_of`, `scale_of`, `int_of`, `epoch_ms_of`) lie far beyond any real price,
quantity, fee or time; outside them a reply is unreadable, like any other malformed one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from application.errors import OrderRefused
from adapters.mexc.errors import UnexpectedReply
from domain.values import round_down_to_scale

ONLINE_STATUSES = frozenset({"1", "ENABLED", "ONLINE", "TRADING"})
DEFAULT_SCALE = 8

# A number read from MEXC has at most MAX_DIGITS significant digits, is 0 or between
# 10**-MAX_MAGNITUDE and 10**(MAX_MAGNITUDE + 1) in size, and is written in at most MAX_TEXT
# characters. Real prices go down to about 1e-12 and supplies up to about 1e15.
MAX_DIGITS = 40
MAX_MAGNITUDE = 30
MAX_TEXT = 100
# Decimals a precision may ask for (MEXC's are 0-12 or so).
MAX_SCALE = 20
# Integers (ids, codes) fit MEXC's int64; times are epoch milliseconds before the year 10000.
MAX_INT = 2**63 - 1
MAX_EPOCH_MS = 253_402_300_799_999


def plain(amount: Decimal) -> str:
    """A decimal as MEXC wants it in a query: no exponent, e.g. 1E+1 -> '10'."""
    return format(amount, "f")


def round_down(amount: Decimal, scale: int) -> Decimal:
    return round_down_to_scale(amount, scale)


def decimal_problem(d: Decimal) -> str | None:
    """Why `d` cannot be a number MEXC sent (not finite, or out of bounds); None when it can."""
    if not d.is_finite():
        return "is not finite"
    sign, digits, exponent = d.as_tuple()
    assert isinstance(exponent, int)
    if len(digits) > MAX_DIGITS or not -MAX_MAGNITUDE - MAX_DIGITS <= exponent <= MAX_MAGNITUDE:
        return "is out of range"
    if d and not -MAX_MAGNITUDE <= d.adjusted() <= MAX_MAGNITUDE:
        return "is out of range"
    return None


def decimal_of(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or value is None or isinstance(value, float):
        raise UnexpectedReply(f"{what} is not a decimal: {_shown(value)}")
    if isinstance(value, int) and abs(value) > MAX_INT:
        raise UnexpectedReply(f"{what} is out of range: {_shown(value)}")
    d, problem = (value, decimal_problem(value)) if isinstance(value, Decimal) else bounded_decimal(str(value).strip())
    if problem is not None:
        raise UnexpectedReply(f"{what} {problem}: {_shown(value)}")
    return d


def bounded_decimal(text: str) -> tuple[Decimal, str | None]:
    """The decimal `text` spells, or what is wrong with it: not a decimal, or out of the bounds
    checked before any arithmetic (decimal_problem). One reader for REST replies and WebSocket frames."""
    if len(text) > MAX_TEXT:
        return Decimal(0), "is not a decimal"
    try:
        d = Decimal(text)
    except InvalidOperation:
        return Decimal(0), "is not a decimal"
    return d, decimal_problem(d)


def _shown(value: Any) -> str:
    """The value in an error message, cut short (it may be a megabyte of digits)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def optional_decimal(raw: dict[str, Any], key: str) -> Decimal | None:
    value = raw.get(key)
    if value is None or value == "":
        return None
    return decimal_of(value, key)


def scale_of(value: Any, what: str, default: int = DEFAULT_SCALE) -> int:
    """A precision given as an int, a digit string, or a step such as "0.001" (-> 3)."""
    if value is None or value == "":
        return default
    d = decimal_of(value, what)
    if d == d.to_integral_value() and 0 <= d <= MAX_SCALE:
        return int(d)
    if Decimal(1).scaleb(-MAX_SCALE) <= d < 1:
        return -d.normalize().as_tuple().exponent  # type: ignore[operator]
    raise UnexpectedReply(f"{what} is not a precision of 0-{MAX_SCALE} decimals: {_shown(value)}")


def int_of(value: Any, what: str, default: int | None = None, low: int = -MAX_INT, high: int = MAX_INT) -> int:
    """An integer given as an int or a string of digits, within [low, high]."""
    if value is None or value == "":
        if default is None:
            raise UnexpectedReply(f"{what} is missing")
        return default
    if isinstance(value, bool) or isinstance(value, float):
        raise UnexpectedReply(f"{what} is not an integer: {_shown(value)}")
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        if len(text) > 20:  # int64 has 19 digits and a sign
            raise UnexpectedReply(f"{what} is out of range: {_shown(value)}")
        try:
            number = int(text)
        except ValueError:
            raise UnexpectedReply(f"{what} is not an integer: {_shown(value)}") from None
    if not low <= number <= high:
        raise UnexpectedReply(f"{what} is out of range ({low} to {high}): {_shown(value)}")
    return number


def epoch_ms_of(value: Any, what: str) -> int:
    """A time in epoch milliseconds, from 1970 up to the year 9999 (a datetime can hold it)."""
    return int_of(value, what, low=0, high=MAX_EPOCH_MS)


def ms_to_datetime(ms: int | None) -> datetime | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC)


def require_dict(raw: Any, what: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise UnexpectedReply(f"{what}: expected an object, got {type(raw).__name__}")
    return raw


def require_list(raw: Any, what: str) -> list[Any]:
    if not isinstance(raw, list):
        raise UnexpectedReply(f"{what}: expected a list, got {type(raw).__name__}")
    return raw


# --- exchangeInfo ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SymbolInfo:
    """One exchangeInfo symbol: what it is, whether it trades, and its order rules."""

    symbol: str
    base_asset: str
    quote_asset: str
    status: str
    spot_allowed: bool
    permissions: tuple[str, ...]
    order_types: tuple[str, ...]
    price_scale: int  # quotePrecision: decimals of a price
    quantity_scale: int  # baseAssetPrecision: decimals of a base quantity
    quote_scale: int  # quoteAssetPrecision: decimals of a quote amount
    min_quantity: Decimal  # baseSizePrecision
    min_notional: Decimal  # quoteAmountPrecision
    min_market_notional: Decimal  # quoteAmountPrecisionMarket (falls back to min_notional)
    max_notional: Decimal | None  # maxQuoteAmount
    max_market_notional: Decimal | None  # maxQuoteAmountMarket
    maker_fee: Decimal | None
    taker_fee: Decimal | None
    trade_side: int  # tradeSideType: 1 all, 2 buy only, 3 sell only, 4 close
    full_name: str = ""

    @property
    def online(self) -> bool:
        return self.status.upper() in ONLINE_STATUSES

    @property
    def tradable(self) -> bool:
        """Online, SPOT permitted, spot allowed. (Tradable *by API* is defaultSymbols.)"""
        spot = not self.permissions or "SPOT" in self.permissions
        return self.online and spot and self.spot_allowed

    def round_price(self, price: Decimal) -> Decimal:
        return round_down(price, self.price_scale)

    def round_quantity(self, quantity: Decimal) -> Decimal:
        return round_down(quantity, self.quantity_scale)

    def round_quote(self, amount: Decimal) -> Decimal:
        return round_down(amount, self.quote_scale)

    def market_buy_amount(self, quote_amount: Decimal) -> Decimal:
        """The quoteOrderQty to send: rounded down; refused here if outside the market bounds."""
        amount = self.round_quote(quote_amount)
        if amount <= 0 or amount < self.min_market_notional:
            raise OrderRefused(
                f"refused before sending: {plain(amount)} {self.quote_asset} is below the minimum market "
                f"order of {plain(self.min_market_notional)} for {self.symbol}",
                "30002",
            )
        if self.max_market_notional is not None and self.max_market_notional > 0 and amount > self.max_market_notional:
            raise OrderRefused(
                f"refused before sending: {plain(amount)} {self.quote_asset} is above the maximum market "
                f"order of {plain(self.max_market_notional)} for {self.symbol}",
                "30003",
            )
        return amount

    def market_sell_quantity(self, quantity: Decimal) -> Decimal:
        qty = self.round_quantity(quantity)
        if qty <= 0 or qty < self.min_quantity:
            raise OrderRefused(
                f"refused before sending: quantity {plain(qty)} is below the minimum {plain(self.min_quantity)} for {self.symbol}",
                "30002",
            )
        return qty

    def limit_order(self, price: Decimal, quantity: Decimal) -> tuple[Decimal, Decimal]:
        """Price and quantity rounded down to the symbol's scales, checked against min notional."""
        p, q = self.round_price(price), self.round_quantity(quantity)
        if p <= 0 or q <= 0 or q < self.min_quantity or p * q < self.min_notional:
            raise OrderRefused(
                f"refused before sending: {plain(q)} x {plain(p)} is below the minimum order of "
                f"{plain(self.min_notional)} {self.quote_asset} for {self.symbol}",
                "30002",
            )
        if self.max_notional is not None and self.max_notional > 0 and p * q > self.max_notional:
            raise OrderRefused(
                f"refused before sending: {plain(p * q)} {self.quote_asset} is above the maximum for {self.symbol}",
                "30003",
            )
        return p, q


def parse_symbol_info(raw: Any) -> SymbolInfo:
    item = require_dict(raw, "exchangeInfo symbol")
    symbol = item.get("symbol")
    if not isinstance(symbol, str) or not symbol:
        raise UnexpectedReply("exchangeInfo symbol without a name")
    min_notional = optional_decimal(item, "quoteAmountPrecision") or Decimal(0)
    market_min = optional_decimal(item, "quoteAmountPrecisionMarket")
    permissions = item.get("permissions") or ()
    order_types = item.get("orderTypes") or ()
    return SymbolInfo(
        symbol=symbol,
        base_asset=str(item.get("baseAsset") or ""),
        quote_asset=str(item.get("quoteAsset") or ""),
        status=str(item.get("status", "")).strip(),
        spot_allowed=item.get("isSpotTradingAllowed", True) is not False,
        permissions=tuple(str(p) for p in permissions) if isinstance(permissions, list) else (),
        order_types=tuple(str(t) for t in order_types) if isinstance(order_types, list) else (),
        price_scale=scale_of(item.get("quotePrecision"), "quotePrecision"),
        quantity_scale=scale_of(item.get("baseAssetPrecision"), "baseAssetPrecision"),
        quote_scale=scale_of(item.get("quoteAssetPrecision", item.get("quotePrecision")), "quoteAssetPrecision"),
        min_quantity=optional_decimal(item, "baseSizePrecision") or Decimal(0),
        min_notional=min_notional,
        min_market_notional=market_min if market_min is not None and market_min > 0 else min_notional,
        max_notional=optional_decimal(item, "maxQuoteAmount"),
        max_market_notional=optional_decimal(item, "maxQuoteAmountMarket"),
        maker_fee=optional_decimal(item, "makerCommission"),
        taker_fee=optional_decimal(item, "takerCommission"),
        trade_side=int_of(item.get("tradeSideType"), "tradeSideType", default=1),
        full_name=str(item.get("fullName") or ""),
    )


def parse_exchange_info(raw: Any) -> dict[str, SymbolInfo]:
    body = require_dict(raw, "exchangeInfo")
    symbols = require_list(body.get("symbols", []), "exchangeInfo symbols")
    parsed = (parse_symbol_info(s) for s in symbols)
    return {info.symbol: info for info in parsed}


# --- orders -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class MexcOrder:
    """An order as MEXC reports it. POST replies often carry no fill information (None)."""

    symbol: str
    order_id: str
    client_order_id: str | None
    side: str | None
    type: str | None
    status: str | None
    price: Decimal | None
    orig_qty: Decimal | None
    executed_qty: Decimal | None
    cummulative_quote_qty: Decimal | None
    orig_quote_order_qty: Decimal | None
    time_ms: int | None


def parse_order(raw: Any) -> MexcOrder:
    item = require_dict(raw, "order")
    if "orderId" not in item and "clientOrderId" not in item and "origClientOrderId" not in item:
        raise UnexpectedReply(f"order reply without an order id: keys {sorted(item)[:8]}")
    time_raw = item.get("time", item.get("transactTime", item.get("updateTime")))
    coid = item.get("clientOrderId") or item.get("origClientOrderId")
    return MexcOrder(
        symbol=str(item.get("symbol") or ""),
        order_id=str(item.get("orderId") or ""),
        client_order_id=str(coid) if coid else None,
        side=str(item["side"]) if item.get("side") else None,
        type=str(item["type"]) if item.get("type") else None,
        status=str(item["status"]) if item.get("status") else None,
        price=optional_decimal(item, "price"),
        orig_qty=optional_decimal(item, "origQty"),
        executed_qty=optional_decimal(item, "executedQty"),
        cummulative_quote_qty=optional_decimal(item, "cummulativeQuoteQty"),
        orig_quote_order_qty=optional_decimal(item, "origQuoteOrderQty"),
        time_ms=epoch_ms_of(time_raw, "time") if time_raw not in (None, "") else None,
    )


@dataclass(frozen=True, slots=True)
class MexcTrade:
    """One fill of one of our orders, from GET myTrades: the only place MEXC reports the
    commission (`commission` in `commission_asset`: the received asset by default, MX when
    the account pays fees in MX)."""

    order_id: str
    quantity: Decimal
    quote_quantity: Decimal | None
    commission: Decimal
    commission_asset: str
    trade_id: str = ""  # "id": tells one fill from another when pages overlap
    time_ms: int | None = None  # "time": when it matched

    @property
    def key(self) -> tuple[str, ...]:
        """What tells this fill from the others of its order (a page may repeat some)."""
        if self.trade_id:
            return (self.trade_id,)
        return (str(self.time_ms), str(self.quantity), str(self.quote_quantity), str(self.commission))


def parse_trades(raw: Any) -> list[MexcTrade]:
    out = []
    for item in require_list(raw, "myTrades"):
        entry = require_dict(item, "trade")
        commission = optional_decimal(entry, "commission") or Decimal(0)
        asset = str(entry.get("commissionAsset") or "")
        if commission < 0 or (commission > 0 and not asset):
            raise UnexpectedReply(f"myTrades: commission {commission} in {asset!r} is not a fee")
        out.append(MexcTrade(
            order_id=str(entry.get("orderId") or ""),
            quantity=decimal_of(entry.get("qty"), "qty"),
            quote_quantity=optional_decimal(entry, "quoteQty"),
            commission=commission,
            commission_asset=asset,
            trade_id=str(entry.get("id") or ""),
            time_ms=epoch_ms_of(entry.get("time"), "time") if entry.get("time") not in (None, "") else None,
        ))
    return out


# --- account and market data -------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Balance:
    asset: str
    free: Decimal
    locked: Decimal


def parse_balances(raw: Any) -> dict[str, Balance]:
    body = require_dict(raw, "account")
    out = {}
    for item in require_list(body.get("balances", []), "account balances"):
        entry = require_dict(item, "balance")
        asset = str(entry.get("asset") or "")
        if asset:
            out[asset] = Balance(asset, decimal_of(entry.get("free", "0"), "free"), decimal_of(entry.get("locked", "0"), "locked"))
    return out


@dataclass(frozen=True, slots=True)
class BookTicker:
    symbol: str
    bid_price: Decimal | None
    bid_qty: Decimal | None
    ask_price: Decimal | None
    ask_qty: Decimal | None


def parse_book_ticker(raw: Any) -> BookTicker:
    item = require_dict(raw, "bookTicker")
    return BookTicker(
        str(item.get("symbol") or ""),
        optional_decimal(item, "bidPrice"), optional_decimal(item, "bidQty"),
        optional_decimal(item, "askPrice"), optional_decimal(item, "askQty"),
    )


@dataclass(frozen=True, slots=True)
class Depth:
    last_update_id: int | None
    bids: tuple[tuple[Decimal, Decimal], ...]
    asks: tuple[tuple[Decimal, Decimal], ...]


def _levels(raw: Any, what: str) -> tuple[tuple[Decimal, Decimal], ...]:
    out = []
    for level in require_list(raw, what):
        pair = require_list(level, what)
        if len(pair) < 2:
            raise UnexpectedReply(f"{what}: a level needs price and quantity")
        out.append((decimal_of(pair[0], f"{what} price"), decimal_of(pair[1], f"{what} quantity")))
    return tuple(out)


def parse_depth(raw: Any) -> Depth:
    item = require_dict(raw, "depth")
    luid = item.get("lastUpdateId")
    return Depth(
        int_of(luid, "lastUpdateId") if luid is not None else None,
        _levels(item.get("bids", []), "bids"),
        _levels(item.get("asks", []), "asks"),
    )


@dataclass(frozen=True, slots=True)
class Kline:
    open_time_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    close_time_ms: int
    quote_volume: Decimal | None


KLINE_INTERVALS = frozenset({"1m", "5m", "15m", "30m", "60m", "4h", "1d", "1W", "1M"})


def parse_klines(raw: Any) -> list[Kline]:
    out = []
    for row in require_list(raw, "klines"):
        r = require_list(row, "kline")
        if len(r) < 7:
            raise UnexpectedReply("kline row too short")
        out.append(Kline(
            epoch_ms_of(r[0], "open time"), decimal_of(r[1], "open"), decimal_of(r[2], "high"), decimal_of(r[3], "low"),
            decimal_of(r[4], "close"), decimal_of(r[5], "volume"), epoch_ms_of(r[6], "close time"),
            decimal_of(r[7], "quote volume") if len(r) > 7 and r[7] is not None else None,
        ))
    return out


@dataclass(frozen=True, slots=True)
class ClockSync:
    """The server-time offset kept (whole ms, for signed timestamps), and what the samples
    allow of it to the nanosecond: the middle of the interval every sample allows, and half
    its width (None when the samples disagree: a stepped clock; then the best sample's)."""

    offset_ms: int  # server time - local time
    rtt_ns: int  # the lowest round trip seen
    samples: int
    offset_ns: int | None = None
    spread_ns: int | None = None
