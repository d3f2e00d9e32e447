"""MEXC's REST shapes, read defensively into typed values. Amounts are Decimal, never float.

Each reply's shape is a msgspec struct (`rename="camel"`, the wire's names); msgspec checks the
types and reads amounts, whether MEXC sends them as strings or as JSON numbers, as exact
Decimals. What msgspec cannot say is post-processing here: the fallbacks between fields (an
order's time is `time`, `transactTime` or `updateTime`), precisions given as ints, digit
strings or steps ("0.001"), `status` as "1"/"2"/"3" or the older "ENABLED", an empty string
read as absent, and the bounds below. Anything unreadable becomes UnexpectedReply (an
AmbiguousOutcome) naming the field, rather than a raw KeyError or ValidationError.

Every number is bounded as it is read, before any arithmetic: a precision of "1E+1000000"
is a valid decimal, and turning it into an int held the event loop for half a minute. The
bounds (see `decimal_of`, `scale_of`, `int_of`, `epoch_ms_of`) lie far beyond any real price,
quantity, fee or time; outside them a reply is unreadable, like any other malformed one.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Context, Decimal, InvalidOperation, Rounded
from typing import Any, TypeVar

import msgspec

from adapters.mexc.errors import UnexpectedReply
from application.errors import OrderRefused
from domain.values import round_down_to_scale

ONLINE_STATUSES = frozenset({"1", "ENABLED", "ONLINE", "TRADING"})
DEFAULT_SCALE = 8

# A number read from MEXC has at most MAX_DIGITS significant digits and is 0 (with an exponent
# of -MAX_MAGNITUDE - MAX_DIGITS or more) or between 10**-MAX_MAGNITUDE and 10**(MAX_MAGNITUDE + 1)
# in size; a number read from text (bounded_decimal) is written in at most MAX_TEXT characters.
# Real prices go down to about 1e-12 and supplies up to about 1e15.
MAX_DIGITS = 40
MAX_MAGNITUDE = 30
MAX_TEXT = 100
# Decimals a precision may ask for (MEXC's are 0-12 or so).
MAX_SCALE = 20
# Integers (ids, codes) fit MEXC's int64; times are epoch milliseconds before the year 10000.
MAX_INT = 2**63 - 1
MAX_EPOCH_MS = 253_402_300_799_999
# Signals (raises) when a number has more than MAX_DIGITS significant digits.
_AT_MOST_MAX_DIGITS = Context(prec=MAX_DIGITS, traps=[Rounded])


def plain(amount: Decimal) -> str:
    """A decimal as MEXC wants it in a query: no exponent, e.g. 1E+1 -> '10'."""
    return format(amount, "f")


def round_down(amount: Decimal, scale: int) -> Decimal:
    return round_down_to_scale(amount, scale)


def decimal_problem(d: Decimal) -> str | None:
    """Why `d` cannot be a number MEXC sent (not finite, or out of bounds); None when it can.
    Neither check computes with `d` beyond its first MAX_DIGITS digits (as_tuple, the obvious way
    to count them, costs a microsecond: ten of them per exchangeInfo symbol)."""
    if not d.is_finite():
        return "is not finite"
    magnitude = d.adjusted()  # the exponent of the first digit (of a zero: its exponent)
    if not (-MAX_MAGNITUDE if d else -MAX_MAGNITUDE - MAX_DIGITS) <= magnitude <= MAX_MAGNITUDE:
        return "is out of range"
    try:
        _AT_MOST_MAX_DIGITS.plus(d)
    except Rounded:
        return "is out of range"
    return None


def decimal_of(value: Any, what: str) -> Decimal:
    if type(value) is Decimal:  # as msgspec reads amounts: the common case first
        problem = decimal_problem(value)
        if problem is not None:
            raise UnexpectedReply(f"{what} {problem}: {_shown(value)}")
        return value
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


def optional_decimal(value: int | Decimal | None, what: str) -> Decimal | None:
    return None if value is None else decimal_of(value, what)


def scale_of(value: Any, what: str, default: int = DEFAULT_SCALE) -> int:
    """A precision given as an int, a digit string, or a step such as "0.001" (-> 3)."""
    if value is None or value == "":
        return default
    if type(value) is int and 0 <= value <= MAX_SCALE:
        return value
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
    if isinstance(value, (bool, float)):
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


_Shape = TypeVar("_Shape")
# An amount as msgspec reads it: an int stays an int (decimal_of bounds it to int64), anything
# else (a string, a JSON number) becomes an exact Decimal, bounded after.
Amount = int | Decimal
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_EXPECTED = re.compile(r"Expected `([^`]*)`")
_KINDS = (("decimal", "a decimal"), ("int", "an integer"), ("str", "a string"), ("bool", "a boolean"))
_SHAPES = {"object": "an object", "array": "a list"}


class _Reply(msgspec.Struct, rename="camel", gc=False):
    """A reply's shape: the wire's camelCase names, unknown fields ignored."""


class _Value(msgspec.Struct, frozen=True, gc=False):
    """What the adapter hands on: immutable, and a sixth of a frozen dataclass's cost to build."""


def read_reply(raw: Any, shape: type[_Shape], what: str) -> _Shape:
    """`raw` (JSON as the client decodes it: numbers as Decimal) read as `shape`. MEXC writes
    some absent values as "": when a reply does not read, it is read once more with every ""
    as null. What still does not read is UnexpectedReply, naming where and what it is."""
    try:
        return msgspec.convert(raw, shape)
    except msgspec.ValidationError:
        pass
    try:
        return msgspec.convert(_blanks_as_null(raw), shape)
    except msgspec.ValidationError as error:
        raise _unreadable(str(error), raw, what) from None


def _blanks_as_null(raw: Any) -> Any:
    if isinstance(raw, dict):
        return {key: _blanks_as_null(value) for key, value in raw.items()}
    if isinstance(raw, list):
        return [_blanks_as_null(value) for value in raw]
    return None if isinstance(raw, str) and raw == "" else raw


def _unreadable(message: str, raw: Any, what: str) -> UnexpectedReply:
    """msgspec's "Expected `decimal | null`, got `bool` - at `$.price`" as "price is not a
    decimal: True", with the value as MEXC sent it (cut short)."""
    message, _, at = message.partition(" - at `$")
    value, where = raw, ""
    for key, index in _STEP.findall(at.rstrip("`")):
        where += f".{key}" if key else f"[{index}]"
        if key:
            value = value.get(key) if isinstance(value, dict) else None
        else:
            value = value[int(index)] if isinstance(value, list) and int(index) < len(value) else None
    where = where.removeprefix(".")
    if not where or where.startswith("["):
        where = what + where
    expected = _EXPECTED.match(message)
    kinds = expected.group(1) if expected else message.lower()  # e.g. "Invalid decimal string"
    if "length" in message:  # "Expected `array` of at least length 7, got 5"
        return UnexpectedReply(f"{where}: {message[0].lower()}{message[1:]}")
    if kinds in ("object", "array"):
        return UnexpectedReply(f"{where}: expected {_SHAPES[kinds]}, got {type(value).__name__}")
    kind = next((name for word, name in _KINDS if word in kinds), None)
    if kind is None:
        return UnexpectedReply(f"{where}: {message}")
    return UnexpectedReply(f"{where} is not {kind}: {_shown(value)}")


# --- exchangeInfo ------------------------------------------------------------------------

class SymbolInfo(_Value, frozen=True):
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
                f"refused before sending: quantity {plain(qty)} is below the minimum {plain(self.min_quantity)} "
                f"for {self.symbol}",
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


class SymbolReply(_Reply):
    """One exchangeInfo symbol as MEXC sends it (the fields read; MEXC sends more)."""

    symbol: str | None = None
    base_asset: str | None = None
    quote_asset: str | None = None
    full_name: str | None = None
    status: str | int | None = None
    is_spot_trading_allowed: Any = True  # anything but false allows
    permissions: Any = None  # a list of names; anything else reads as none
    order_types: Any = None
    quote_precision: Amount | None = None
    base_asset_precision: Amount | None = None
    quote_asset_precision: Amount | None = None
    base_size_precision: Amount | None = None
    quote_amount_precision: Amount | None = None
    quote_amount_precision_market: Amount | None = None
    max_quote_amount: Amount | None = None
    max_quote_amount_market: Amount | None = None
    maker_commission: Amount | None = None
    taker_commission: Amount | None = None
    trade_side_type: int | str | None = None


class ExchangeInfoReply(_Reply):
    symbols: list[SymbolReply] = []


def parse_symbol_info(raw: Any) -> SymbolInfo:
    return symbol_info(read_reply(raw, SymbolReply, "exchangeInfo symbol"))


def symbol_info(reply: SymbolReply) -> SymbolInfo:
    if not reply.symbol:
        raise UnexpectedReply("exchangeInfo symbol without a name")
    min_notional = optional_decimal(reply.quote_amount_precision, "quoteAmountPrecision") or Decimal(0)
    market_min = optional_decimal(reply.quote_amount_precision_market, "quoteAmountPrecisionMarket")
    quote_precision = reply.quote_asset_precision if reply.quote_asset_precision is not None else reply.quote_precision
    return SymbolInfo(
        symbol=reply.symbol,
        base_asset=reply.base_asset or "",
        quote_asset=reply.quote_asset or "",
        status=str(reply.status if reply.status is not None else "").strip(),
        spot_allowed=reply.is_spot_trading_allowed is not False,
        permissions=_names(reply.permissions),
        order_types=_names(reply.order_types),
        price_scale=scale_of(reply.quote_precision, "quotePrecision"),
        quantity_scale=scale_of(reply.base_asset_precision, "baseAssetPrecision"),
        quote_scale=scale_of(quote_precision, "quoteAssetPrecision"),
        min_quantity=optional_decimal(reply.base_size_precision, "baseSizePrecision") or Decimal(0),
        min_notional=min_notional,
        min_market_notional=market_min if market_min is not None and market_min > 0 else min_notional,
        max_notional=optional_decimal(reply.max_quote_amount, "maxQuoteAmount"),
        max_market_notional=optional_decimal(reply.max_quote_amount_market, "maxQuoteAmountMarket"),
        maker_fee=optional_decimal(reply.maker_commission, "makerCommission"),
        taker_fee=optional_decimal(reply.taker_commission, "takerCommission"),
        trade_side=int_of(reply.trade_side_type, "tradeSideType", default=1),
        full_name=reply.full_name or "",
    )


def _names(raw: Any) -> tuple[str, ...]:
    return tuple(str(name) for name in raw) if isinstance(raw, list) else ()


def parse_exchange_info(raw: Any) -> dict[str, SymbolInfo]:
    body = read_reply(raw, ExchangeInfoReply, "exchangeInfo")
    parsed = (symbol_info(s) for s in body.symbols)
    return {info.symbol: info for info in parsed}


# --- orders -------------------------------------------------------------------------------

class MexcOrder(_Value, frozen=True):
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


class OrderReply(_Reply):
    """An order as POST/GET/DELETE order and openOrders send it."""

    symbol: str | None = None
    order_id: str | int | None = None
    client_order_id: str | None = None
    orig_client_order_id: str | None = None  # DELETE's name for it
    side: str | None = None
    type: str | None = None
    status: str | None = None
    price: Amount | None = None
    orig_qty: Amount | None = None
    executed_qty: Amount | None = None
    cummulative_quote_qty: Amount | None = None
    orig_quote_order_qty: Amount | None = None
    time: int | str | None = None  # GET's; POST sends transactTime, DELETE sometimes updateTime
    transact_time: int | str | None = None
    update_time: int | str | None = None


def parse_order(raw: Any) -> MexcOrder:
    reply = read_reply(raw, OrderReply, "order")
    coid = reply.client_order_id or reply.orig_client_order_id
    if reply.order_id is None and coid is None:
        raise UnexpectedReply(f"order reply without an order id: keys {sorted(raw)[:8]}")
    when = reply.time if reply.time is not None else (
        reply.transact_time if reply.transact_time is not None else reply.update_time)
    return MexcOrder(
        symbol=reply.symbol or "",
        order_id=str(reply.order_id or ""),
        client_order_id=coid or None,
        side=reply.side or None,
        type=reply.type or None,
        status=reply.status or None,
        price=optional_decimal(reply.price, "price"),
        orig_qty=optional_decimal(reply.orig_qty, "origQty"),
        executed_qty=optional_decimal(reply.executed_qty, "executedQty"),
        cummulative_quote_qty=optional_decimal(reply.cummulative_quote_qty, "cummulativeQuoteQty"),
        orig_quote_order_qty=optional_decimal(reply.orig_quote_order_qty, "origQuoteOrderQty"),
        time_ms=None if when is None else epoch_ms_of(when, "time"),
    )


class MexcTrade(_Value, frozen=True):
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


class TradeReply(_Reply):
    """One fill in GET myTrades."""

    order_id: str | int | None = None
    id: str | int | None = None
    qty: Amount | None = None
    quote_qty: Amount | None = None
    commission: Amount | None = None
    commission_asset: str | None = None
    time: int | str | None = None


def parse_trades(raw: Any) -> list[MexcTrade]:
    out = []
    for entry in read_reply(raw, list[TradeReply], "myTrades"):
        commission = optional_decimal(entry.commission, "commission") or Decimal(0)
        asset = entry.commission_asset or ""
        if commission < 0 or (commission > 0 and not asset):
            raise UnexpectedReply(f"myTrades: commission {commission} in {asset!r} is not a fee")
        out.append(MexcTrade(
            order_id=str(entry.order_id or ""),
            quantity=decimal_of(entry.qty, "qty"),
            quote_quantity=optional_decimal(entry.quote_qty, "quoteQty"),
            commission=commission,
            commission_asset=asset,
            trade_id=str(entry.id or ""),
            time_ms=None if entry.time is None else epoch_ms_of(entry.time, "time"),
        ))
    return out


# --- account and market data -------------------------------------------------------------

class Balance(_Value, frozen=True):
    asset: str
    free: Decimal
    locked: Decimal


class BalanceReply(_Reply):
    asset: str | None = None
    free: Amount | None = 0  # absent: none; null: unreadable
    locked: Amount | None = 0


class AccountReply(_Reply):
    balances: list[BalanceReply] = []


def parse_balances(raw: Any) -> dict[str, Balance]:
    return {
        entry.asset: Balance(entry.asset, decimal_of(entry.free, "free"), decimal_of(entry.locked, "locked"))
        for entry in read_reply(raw, AccountReply, "account").balances
        if entry.asset
    }


class BookTicker(_Value, frozen=True):
    symbol: str
    bid_price: Decimal | None
    bid_qty: Decimal | None
    ask_price: Decimal | None
    ask_qty: Decimal | None


class BookTickerReply(_Reply):
    symbol: str | None = None
    bid_price: Amount | None = None
    bid_qty: Amount | None = None
    ask_price: Amount | None = None
    ask_qty: Amount | None = None


def parse_book_ticker(raw: Any) -> BookTicker:
    item = read_reply(raw, BookTickerReply, "bookTicker")
    return BookTicker(
        item.symbol or "",
        optional_decimal(item.bid_price, "bidPrice"), optional_decimal(item.bid_qty, "bidQty"),
        optional_decimal(item.ask_price, "askPrice"), optional_decimal(item.ask_qty, "askQty"),
    )


class Depth(_Value, frozen=True):
    last_update_id: int | None
    bids: tuple[tuple[Decimal, Decimal], ...]
    asks: tuple[tuple[Decimal, Decimal], ...]


class LevelReply(_Reply, array_like=True):
    """[price, quantity] (more values are ignored)."""

    price: Amount
    quantity: Amount


class DepthReply(_Reply):
    last_update_id: int | str | None = None
    bids: list[LevelReply] = []
    asks: list[LevelReply] = []


def _levels(levels: list[LevelReply], what: str) -> tuple[tuple[Decimal, Decimal], ...]:
    return tuple((decimal_of(lv.price, f"{what} price"), decimal_of(lv.quantity, f"{what} quantity")) for lv in levels)


def parse_depth(raw: Any) -> Depth:
    item = read_reply(raw, DepthReply, "depth")
    return Depth(
        None if item.last_update_id is None else int_of(item.last_update_id, "lastUpdateId"),
        _levels(item.bids, "bids"),
        _levels(item.asks, "asks"),
    )


class Kline(_Value, frozen=True):
    open_time_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    close_time_ms: int
    quote_volume: Decimal | None


KLINE_INTERVALS = frozenset({"1m", "5m", "15m", "30m", "60m", "4h", "1d", "1W", "1M"})


class KlineReply(_Reply, array_like=True):
    """[open time, open, high, low, close, volume, close time, quote volume] (more are ignored)."""

    open_time: int | str | None
    open: Amount | None
    high: Amount | None
    low: Amount | None
    close: Amount | None
    volume: Amount | None
    close_time: int | str | None
    quote_volume: Amount | None = None


def parse_klines(raw: Any) -> list[Kline]:
    return [
        Kline(
            epoch_ms_of(r.open_time, "open time"), decimal_of(r.open, "open"), decimal_of(r.high, "high"),
            decimal_of(r.low, "low"), decimal_of(r.close, "close"), decimal_of(r.volume, "volume"),
            epoch_ms_of(r.close_time, "close time"), optional_decimal(r.quote_volume, "quote volume"),
        )
        for r in read_reply(raw, list[KlineReply], "klines")
    ]


class ClockSync(_Value, frozen=True):
    """The server-time offset kept (whole ms, for signed timestamps), and what the samples
    allow of it to the nanosecond: the middle of the interval every sample allows, and half
    its width (None when the samples disagree: a stepped clock; then the best sample's)."""

    offset_ms: int  # server time - local time
    rtt_ns: int  # the lowest round trip seen
    samples: int
    offset_ns: int | None = None
    spread_ns: int | None = None
