"""MEXC's WebSocket protobuf messages, read and written without a protobuf library.

Only the wire format is implemented (varint, 64-bit, length-delimited, 32-bit; groups are
refused), and only the messages the sniper uses, with the field numbers of MEXC's published
schema (``PushDataV3ApiWrapper`` and the ``*V3Api`` bodies). Unknown fields are skipped, as
protobuf requires, so MEXC may add fields without breaking us.

Prices, quantities and amounts travel as strings; here they become ``Decimal`` (``None``
when the field is absent, which is how proto3 writes an empty string). Anything malformed
— truncated bytes, an over-long varint, a wrong wire type for a known field, invalid
UTF-8, a price that is not a finite number — raises ``ProtobufDecodeError`` and nothing
else (never an IndexError).

Encoding follows proto3: a field at its default (0, "", False, None) is not written.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar, Union

from adapters.mexc.models import bounded_decimal

# --- wire format ---------------------------------------------------------------------------

VARINT = 0
FIXED64 = 1
LENGTH_DELIMITED = 2
START_GROUP = 3
END_GROUP = 4
FIXED32 = 5

_MAX_VARINT_BYTES = 10
_U64 = (1 << 64) - 1
_MAX_FIELD_NUMBER = (1 << 29) - 1


class ProtobufDecodeError(ValueError):
    """The bytes are not a valid encoding of the expected message."""


def decode_varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Read an unsigned varint at `pos`; returns (value, next position)."""
    result = 0
    shift = 0
    end = len(data)
    for i in range(_MAX_VARINT_BYTES):
        if pos >= end:
            raise ProtobufDecodeError("truncated varint")
        byte = data[pos]
        pos += 1
        if i == _MAX_VARINT_BYTES - 1 and byte > 0x01:
            raise ProtobufDecodeError("varint overflows 64 bits")
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
    raise ProtobufDecodeError("varint longer than 10 bytes")


def encode_varint(value: int) -> bytes:
    """Unsigned varint; a negative value is written as its 64-bit two's complement."""
    if value < 0:
        value &= _U64
    if value > _U64:
        raise ValueError(f"varint out of range: {value}")
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def iter_fields(data: bytes | memoryview) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (field number, wire type, value) for every field of one message.

    The value is an int for varint, 64-bit and 32-bit fields (raw, unsigned) and bytes for
    length-delimited ones. Raises ProtobufDecodeError on anything malformed.
    """
    view = memoryview(data) if not isinstance(data, memoryview) else data
    pos = 0
    end = len(view)
    while pos < end:
        key, pos = decode_varint(view, pos)
        number, wire_type = key >> 3, key & 0x07
        if number == 0 or number > _MAX_FIELD_NUMBER:
            raise ProtobufDecodeError(f"invalid field number {number}")
        if wire_type == VARINT:
            value, pos = decode_varint(view, pos)
            yield number, wire_type, value
        elif wire_type == FIXED64:
            if pos + 8 > end:
                raise ProtobufDecodeError(f"truncated 64-bit field {number}")
            yield number, wire_type, int.from_bytes(view[pos : pos + 8], "little")
            pos += 8
        elif wire_type == LENGTH_DELIMITED:
            length, pos = decode_varint(view, pos)
            if length > end - pos:
                raise ProtobufDecodeError(f"truncated length-delimited field {number}: needs {length} bytes, {end - pos} left")
            yield number, wire_type, bytes(view[pos : pos + length])
            pos += length
        elif wire_type == FIXED32:
            if pos + 4 > end:
                raise ProtobufDecodeError(f"truncated 32-bit field {number}")
            yield number, wire_type, int.from_bytes(view[pos : pos + 4], "little")
            pos += 4
        else:
            raise ProtobufDecodeError(f"unsupported wire type {wire_type} (field {number})")


class Writer:
    """Builds one message. Methods skip proto3 defaults unless `always` is set."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def _key(self, number: int, wire_type: int) -> None:
        if not 0 < number <= _MAX_FIELD_NUMBER:
            raise ValueError(f"invalid field number {number}")
        self._buf += encode_varint((number << 3) | wire_type)

    def varint(self, number: int, value: int | bool | None, always: bool = False) -> "Writer":
        """int32, int64, uint32, uint64, bool, enum (negative ints as two's complement)."""
        if value is None or (not value and not always):
            return self
        self._key(number, VARINT)
        self._buf += encode_varint(int(value))
        return self

    def fixed64(self, number: int, value: int | None, always: bool = False) -> "Writer":
        if value is None or (not value and not always):
            return self
        self._key(number, FIXED64)
        self._buf += (value & _U64).to_bytes(8, "little")
        return self

    def fixed32(self, number: int, value: int | None, always: bool = False) -> "Writer":
        if value is None or (not value and not always):
            return self
        self._key(number, FIXED32)
        self._buf += (value & 0xFFFFFFFF).to_bytes(4, "little")
        return self

    def bytes_(self, number: int, value: bytes | None, always: bool = False) -> "Writer":
        if value is None or (not value and not always):
            return self
        self._key(number, LENGTH_DELIMITED)
        self._buf += encode_varint(len(value))
        self._buf += value
        return self

    def string(self, number: int, value: str | None, always: bool = False) -> "Writer":
        return self.bytes_(number, None if value is None else value.encode("utf-8"), always)

    def decimal(self, number: int, value: Decimal | None) -> "Writer":
        """A Decimal as MEXC sends it: a plain decimal string, digits kept as given."""
        return self.string(number, None if value is None else format(value, "f"))

    def message(self, number: int, value: bytes | None) -> "Writer":
        """An embedded message (already encoded); written even when empty."""
        return self.bytes_(number, value, always=True)

    def finish(self) -> bytes:
        return bytes(self._buf)


# --- typed field readers (each checks the wire type) ----------------------------------------

def _expect(number: int, wire_type: int, wanted: int, what: str) -> None:
    if wire_type != wanted:
        raise ProtobufDecodeError(f"field {number} ({what}) has wire type {wire_type}, expected {wanted}")


def _as_str(number: int, wire_type: int, value: int | bytes) -> str:
    _expect(number, wire_type, LENGTH_DELIMITED, "string")
    assert isinstance(value, bytes)
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtobufDecodeError(f"field {number} is not valid UTF-8: {exc}") from None


def _as_decimal(number: int, wire_type: int, value: int | bytes) -> Decimal | None:
    text = _as_str(number, wire_type, value).strip()
    if not text:
        return None
    d, problem = bounded_decimal(text)
    if problem is not None:
        problem = "is not a decimal number" if problem == "is not a decimal" else problem
        raise ProtobufDecodeError(f"field {number} {problem}: {text[:40]!r}" + ("..." if len(text) > 40 else ""))
    return d


def _as_int(number: int, wire_type: int, value: int | bytes, bits: int) -> int:
    _expect(number, wire_type, VARINT, f"int{bits}")
    assert isinstance(value, int)
    return _signed(value, bits) if bits == 32 else _signed(value, 64)


def _as_bool(number: int, wire_type: int, value: int | bytes) -> bool:
    _expect(number, wire_type, VARINT, "bool")
    return bool(value)


def _as_message(number: int, wire_type: int, value: int | bytes) -> bytes:
    _expect(number, wire_type, LENGTH_DELIMITED, "message")
    assert isinstance(value, bytes)
    return value


# --- public market data --------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PublicAggreDealsV3ApiItem:
    """One aggregated trade. trade_type: 1 buy, 2 sell. time: epoch ms."""

    price: Decimal | None = None
    quantity: Decimal | None = None
    trade_type: int = 0
    time: int = 0

    def encode(self) -> bytes:
        return (
            Writer().decimal(1, self.price).decimal(2, self.quantity).varint(3, self.trade_type).varint(4, self.time).finish()
        )

    @classmethod
    def decode(cls, data: bytes) -> "PublicAggreDealsV3ApiItem":
        price = quantity = None
        trade_type = time = 0
        for number, wt, value in iter_fields(data):
            if number == 1:
                price = _as_decimal(number, wt, value)
            elif number == 2:
                quantity = _as_decimal(number, wt, value)
            elif number == 3:
                trade_type = _as_int(number, wt, value, 32)
            elif number == 4:
                time = _as_int(number, wt, value, 64)
        return cls(price, quantity, trade_type, time)


@dataclass(frozen=True, slots=True)
class PublicAggreDealsV3Api:
    deals: tuple[PublicAggreDealsV3ApiItem, ...] = ()
    event_type: str = ""

    def encode(self) -> bytes:
        w = Writer()
        for deal in self.deals:
            w.message(1, deal.encode())
        return w.string(2, self.event_type).finish()

    @classmethod
    def decode(cls, data: bytes) -> "PublicAggreDealsV3Api":
        deals: list[PublicAggreDealsV3ApiItem] = []
        event_type = ""
        for number, wt, value in iter_fields(data):
            if number == 1:
                deals.append(PublicAggreDealsV3ApiItem.decode(_as_message(number, wt, value)))
            elif number == 2:
                event_type = _as_str(number, wt, value)
        return cls(tuple(deals), event_type)


@dataclass(frozen=True, slots=True)
class PublicAggreBookTickerV3Api:
    bid_price: Decimal | None = None
    bid_quantity: Decimal | None = None
    ask_price: Decimal | None = None
    ask_quantity: Decimal | None = None

    def encode(self) -> bytes:
        return (
            Writer()
            .decimal(1, self.bid_price)
            .decimal(2, self.bid_quantity)
            .decimal(3, self.ask_price)
            .decimal(4, self.ask_quantity)
            .finish()
        )

    @classmethod
    def decode(cls, data: bytes) -> "PublicAggreBookTickerV3Api":
        fields: dict[int, Decimal | None] = {}
        for number, wt, value in iter_fields(data):
            if number in (1, 2, 3, 4):
                fields[number] = _as_decimal(number, wt, value)
        return cls(fields.get(1), fields.get(2), fields.get(3), fields.get(4))


# --- private user data ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PrivateOrdersV3Api:
    """An order update (spot@private.orders.v3.api.pb).

    trade_type: 1 buy, 2 sell. status: 1 new, 2 filled, 3 partially filled, 4 cancelled,
    5 partially cancelled (MEXC's codes). create_time: epoch ms.
    """

    id: str = ""
    client_id: str = ""
    price: Decimal | None = None
    quantity: Decimal | None = None
    amount: Decimal | None = None
    avg_price: Decimal | None = None
    order_type: int = 0
    trade_type: int = 0
    is_maker: bool = False
    remain_amount: Decimal | None = None
    remain_quantity: Decimal | None = None
    last_deal_quantity: Decimal | None = None
    cumulative_quantity: Decimal | None = None
    cumulative_amount: Decimal | None = None
    status: int = 0
    create_time: int = 0
    market: str | None = None
    trigger_type: int | None = None
    trigger_price: Decimal | None = None
    state: int | None = None
    oco_id: str | None = None
    route_factor: str | None = None
    symbol_id: str | None = None
    market_id: str | None = None
    market_currency_id: str | None = None
    currency_id: str | None = None

    _STRINGS: ClassVar[dict[int, str]] = {1: "id", 2: "client_id", 17: "market", 21: "oco_id", 22: "route_factor", 23: "symbol_id", 24: "market_id", 25: "market_currency_id", 26: "currency_id"}
    _DECIMALS: ClassVar[dict[int, str]] = {3: "price", 4: "quantity", 5: "amount", 6: "avg_price", 10: "remain_amount", 11: "remain_quantity", 12: "last_deal_quantity", 13: "cumulative_quantity", 14: "cumulative_amount", 19: "trigger_price"}
    _INT32: ClassVar[dict[int, str]] = {7: "order_type", 8: "trade_type", 15: "status", 18: "trigger_type", 20: "state"}

    def encode(self) -> bytes:
        # Fields 17..26 are `optional` in the schema: written whenever set, even when empty.
        return (
            Writer()
            .string(1, self.id)
            .string(2, self.client_id)
            .decimal(3, self.price)
            .decimal(4, self.quantity)
            .decimal(5, self.amount)
            .decimal(6, self.avg_price)
            .varint(7, self.order_type)
            .varint(8, self.trade_type)
            .varint(9, self.is_maker)
            .decimal(10, self.remain_amount)
            .decimal(11, self.remain_quantity)
            .decimal(12, self.last_deal_quantity)
            .decimal(13, self.cumulative_quantity)
            .decimal(14, self.cumulative_amount)
            .varint(15, self.status)
            .varint(16, self.create_time)
            .string(17, self.market, always=self.market is not None)
            .varint(18, self.trigger_type, always=self.trigger_type is not None)
            .decimal(19, self.trigger_price)
            .varint(20, self.state, always=self.state is not None)
            .string(21, self.oco_id, always=self.oco_id is not None)
            .string(22, self.route_factor, always=self.route_factor is not None)
            .string(23, self.symbol_id, always=self.symbol_id is not None)
            .string(24, self.market_id, always=self.market_id is not None)
            .string(25, self.market_currency_id, always=self.market_currency_id is not None)
            .string(26, self.currency_id, always=self.currency_id is not None)
            .finish()
        )

    @classmethod
    def decode(cls, data: bytes) -> "PrivateOrdersV3Api":
        kwargs: dict[str, object] = {}
        for number, wt, value in iter_fields(data):
            if number in cls._STRINGS:
                kwargs[cls._STRINGS[number]] = _as_str(number, wt, value)
            elif number in cls._DECIMALS:
                kwargs[cls._DECIMALS[number]] = _as_decimal(number, wt, value)
            elif number in cls._INT32:
                kwargs[cls._INT32[number]] = _as_int(number, wt, value, 32)
            elif number == 9:
                kwargs["is_maker"] = _as_bool(number, wt, value)
            elif number == 16:
                kwargs["create_time"] = _as_int(number, wt, value, 64)
        return cls(**kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class PrivateDealsV3Api:
    """One of our own fills (spot@private.deals.v3.api.pb). trade_type: 1 buy, 2 sell; time: epoch ms."""

    price: Decimal | None = None
    quantity: Decimal | None = None
    amount: Decimal | None = None
    trade_type: int = 0
    is_maker: bool = False
    is_self_trade: bool = False
    trade_id: str = ""
    client_order_id: str = ""
    order_id: str = ""
    fee_amount: Decimal | None = None
    fee_currency: str = ""
    time: int = 0

    def encode(self) -> bytes:
        return (
            Writer()
            .decimal(1, self.price)
            .decimal(2, self.quantity)
            .decimal(3, self.amount)
            .varint(4, self.trade_type)
            .varint(5, self.is_maker)
            .varint(6, self.is_self_trade)
            .string(7, self.trade_id)
            .string(8, self.client_order_id)
            .string(9, self.order_id)
            .decimal(10, self.fee_amount)
            .string(11, self.fee_currency)
            .varint(12, self.time)
            .finish()
        )

    @classmethod
    def decode(cls, data: bytes) -> "PrivateDealsV3Api":
        kwargs: dict[str, object] = {}
        decimals = {1: "price", 2: "quantity", 3: "amount", 10: "fee_amount"}
        strings = {7: "trade_id", 8: "client_order_id", 9: "order_id", 11: "fee_currency"}
        for number, wt, value in iter_fields(data):
            if number in decimals:
                kwargs[decimals[number]] = _as_decimal(number, wt, value)
            elif number in strings:
                kwargs[strings[number]] = _as_str(number, wt, value)
            elif number == 4:
                kwargs["trade_type"] = _as_int(number, wt, value, 32)
            elif number == 5:
                kwargs["is_maker"] = _as_bool(number, wt, value)
            elif number == 6:
                kwargs["is_self_trade"] = _as_bool(number, wt, value)
            elif number == 12:
                kwargs["time"] = _as_int(number, wt, value, 64)
        return cls(**kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class PrivateAccountV3Api:
    """A balance change (spot@private.account.v3.api.pb). time: epoch ms."""

    vcoin_name: str = ""
    coin_id: str = ""
    balance_amount: Decimal | None = None
    balance_amount_change: Decimal | None = None
    frozen_amount: Decimal | None = None
    frozen_amount_change: Decimal | None = None
    type: str = ""
    time: int = 0

    def encode(self) -> bytes:
        return (
            Writer()
            .string(1, self.vcoin_name)
            .string(2, self.coin_id)
            .decimal(3, self.balance_amount)
            .decimal(4, self.balance_amount_change)
            .decimal(5, self.frozen_amount)
            .decimal(6, self.frozen_amount_change)
            .string(7, self.type)
            .varint(8, self.time)
            .finish()
        )

    @classmethod
    def decode(cls, data: bytes) -> "PrivateAccountV3Api":
        kwargs: dict[str, object] = {}
        strings = {1: "vcoin_name", 2: "coin_id", 7: "type"}
        decimals = {3: "balance_amount", 4: "balance_amount_change", 5: "frozen_amount", 6: "frozen_amount_change"}
        for number, wt, value in iter_fields(data):
            if number in strings:
                kwargs[strings[number]] = _as_str(number, wt, value)
            elif number in decimals:
                kwargs[decimals[number]] = _as_decimal(number, wt, value)
            elif number == 8:
                kwargs["time"] = _as_int(number, wt, value, 64)
        return cls(**kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class RawBody:
    """A body we do not model (depths, klines...): its field number and undecoded bytes."""

    field_number: int
    data: bytes

    def encode(self) -> bytes:
        return self.data


# --- the envelope ---------------------------------------------------------------------------

PUBLIC_LIMIT_DEPTHS = 303
PRIVATE_ORDERS = 304
PRIVATE_DEALS = 306
PRIVATE_ACCOUNT = 307
PUBLIC_SPOT_KLINE = 308
PUBLIC_AGGRE_DEPTHS = 313
PUBLIC_AGGRE_DEALS = 314
PUBLIC_AGGRE_BOOK_TICKER = 315

Body = Union[
    PublicAggreDealsV3Api,
    PublicAggreBookTickerV3Api,
    PrivateOrdersV3Api,
    PrivateDealsV3Api,
    PrivateAccountV3Api,
    RawBody,
]

_BODY_TYPES: dict[int, type] = {
    PUBLIC_AGGRE_DEALS: PublicAggreDealsV3Api,
    PUBLIC_AGGRE_BOOK_TICKER: PublicAggreBookTickerV3Api,
    PRIVATE_ORDERS: PrivateOrdersV3Api,
    PRIVATE_DEALS: PrivateDealsV3Api,
    PRIVATE_ACCOUNT: PrivateAccountV3Api,
}
_BODY_FIELDS: dict[type, int] = {cls: number for number, cls in _BODY_TYPES.items()}
# Every field number of the oneof in MEXC's schema (301..315), modelled or not.
_ONEOF_FIELDS = frozenset(range(301, 316))


@dataclass(frozen=True, slots=True)
class PushDataV3ApiWrapper:
    """The envelope of every binary push. `body` is the oneof; None when the push has none."""

    channel: str = ""
    body: Body | None = None
    symbol: str | None = None
    symbol_id: str | None = None
    create_time: int | None = None
    send_time: int | None = None

    def encode(self) -> bytes:
        w = Writer().string(1, self.channel)
        w.string(3, self.symbol, always=self.symbol is not None)
        w.string(4, self.symbol_id, always=self.symbol_id is not None)
        w.varint(5, self.create_time, always=self.create_time is not None)
        w.varint(6, self.send_time, always=self.send_time is not None)
        if self.body is not None:
            number = self.body.field_number if isinstance(self.body, RawBody) else _BODY_FIELDS[type(self.body)]
            w.message(number, self.body.encode())
        return w.finish()

    @classmethod
    def decode(cls, data: bytes) -> "PushDataV3ApiWrapper":
        channel = ""
        symbol = symbol_id = None
        create_time = send_time = None
        body: Body | None = None
        for number, wt, value in iter_fields(data):
            if number == 1:
                channel = _as_str(number, wt, value)
            elif number == 3:
                symbol = _as_str(number, wt, value)
            elif number == 4:
                symbol_id = _as_str(number, wt, value)
            elif number == 5:
                create_time = _as_int(number, wt, value, 64)
            elif number == 6:
                send_time = _as_int(number, wt, value, 64)
            elif number in _ONEOF_FIELDS:
                raw = _as_message(number, wt, value)
                body_type = _BODY_TYPES.get(number)
                # A oneof keeps the last member seen on the wire.
                body = body_type.decode(raw) if body_type is not None else RawBody(number, raw)
        return cls(channel, body, symbol, symbol_id, create_time, send_time)


def decode_push(data: bytes) -> PushDataV3ApiWrapper:
    """Decode one binary WebSocket frame; raises ProtobufDecodeError if malformed."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ProtobufDecodeError(f"expected bytes, got {type(data).__name__}")
    return PushDataV3ApiWrapper.decode(bytes(data))
