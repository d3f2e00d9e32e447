"""The protobuf wire format reader/writer and MEXC's messages: hand-built bytes, round trips,
unknown fields, and malformed input that must raise ProtobufDecodeError and nothing else."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from adapters.mexc.protobuf import (
    PRIVATE_DEALS,
    PUBLIC_AGGRE_BOOK_TICKER,
    PUBLIC_AGGRE_DEALS,
    PrivateAccountV3Api,
    PrivateDealsV3Api,
    PrivateOrdersV3Api,
    ProtobufDecodeError,
    PublicAggreBookTickerV3Api,
    PublicAggreDealsV3Api,
    PublicAggreDealsV3ApiItem,
    PushDataV3ApiWrapper,
    RawBody,
    Writer,
    decode_push,
    decode_varint,
    encode_varint,
    iter_fields,
)


def key(number: int, wire_type: int) -> bytes:
    return encode_varint(number << 3 | wire_type)


def ld(number: int, payload: bytes) -> bytes:
    """A length-delimited field, by hand."""
    return key(number, 2) + bytes([len(payload)]) + payload  # payloads here are < 128 bytes


# --- varints ---------------------------------------------------------------------------------


class TestVarint:
    @pytest.mark.parametrize(
        ("value", "encoded"),
        [
            (0, b"\x00"),
            (1, b"\x01"),
            (127, b"\x7f"),
            (128, b"\x80\x01"),
            (150, b"\x96\x01"),  # the protobuf documentation's example
            (300, b"\xac\x02"),
            (1_700_000_000_123, b"\xfb\xd0\x95\xff\xbc\x31"),
            ((1 << 64) - 1, b"\xff" * 9 + b"\x01"),
            (-1, b"\xff" * 9 + b"\x01"),  # int32/int64 -1: ten bytes
        ],
    )
    def test_known_encodings(self, value: int, encoded: bytes) -> None:
        assert encode_varint(value) == encoded
        decoded, end = decode_varint(encoded, 0)
        assert decoded == value & ((1 << 64) - 1)
        assert end == len(encoded)

    def test_round_trip_many(self) -> None:
        rng = random.Random(7)
        for _ in range(500):
            value = rng.getrandbits(rng.randint(1, 64))
            assert decode_varint(encode_varint(value), 0) == (value, len(encode_varint(value)))

    @pytest.mark.parametrize("data", [b"", b"\x80", b"\xff\xff", b"\x96"])
    def test_truncated(self, data: bytes) -> None:
        with pytest.raises(ProtobufDecodeError, match="truncated"):
            decode_varint(data, 0)

    def test_longer_than_ten_bytes(self) -> None:
        with pytest.raises(ProtobufDecodeError):
            decode_varint(b"\xff" * 11 + b"\x01", 0)

    def test_overflowing_64_bits(self) -> None:
        with pytest.raises(ProtobufDecodeError, match="64 bits"):
            decode_varint(b"\xff" * 9 + b"\x02", 0)

    def test_too_large_to_encode(self) -> None:
        with pytest.raises(ValueError):
            encode_varint(1 << 64)


# --- hand-built frames ------------------------------------------------------------------------

DEAL_ITEM = ld(1, b"0.00001234") + ld(2, b"1500.5") + key(3, 0) + b"\x02" + key(4, 0) + encode_varint(1_700_000_000_123)
DEALS_BODY = ld(1, DEAL_ITEM) + ld(2, b"spot@public.aggre.deals.v3.api.pb@100ms")
CHANNEL = b"spot@public.aggre.deals.v3.api.pb@100ms@NEWUSDT"
HAND_BUILT_DEALS = (
    ld(1, CHANNEL)
    + ld(3, b"NEWUSDT")
    + key(5, 0) + encode_varint(1_700_000_000_100)
    + key(6, 0) + encode_varint(1_700_000_000_200)
    + key(314, 2) + bytes([len(DEALS_BODY)]) + DEALS_BODY
)


class TestHandBuiltBytes:
    def test_field_314_key_bytes(self) -> None:
        # (314 << 3) | 2 = 2514 -> varint d2 13
        assert key(314, 2) == b"\xd2\x13"

    def test_decode_an_aggregated_deals_push(self) -> None:
        push = decode_push(HAND_BUILT_DEALS)
        assert push.channel == CHANNEL.decode()
        assert push.symbol == "NEWUSDT"
        assert push.symbol_id is None
        assert push.create_time == 1_700_000_000_100
        assert push.send_time == 1_700_000_000_200
        assert isinstance(push.body, PublicAggreDealsV3Api)
        assert push.body.event_type == "spot@public.aggre.deals.v3.api.pb@100ms"
        [deal] = push.body.deals
        assert deal.price == Decimal("0.00001234")
        assert str(deal.price) == "0.00001234"  # exact digits, no float on the way
        assert deal.quantity == Decimal("1500.5")
        assert deal.trade_type == 2
        assert deal.time == 1_700_000_000_123

    def test_our_encoding_is_byte_identical(self) -> None:
        assert decode_push(HAND_BUILT_DEALS).encode() == HAND_BUILT_DEALS

    def test_book_ticker(self) -> None:
        body = ld(1, b"0.998") + ld(2, b"10") + ld(3, b"1.002") + ld(4, b"20.25")
        frame = ld(1, b"spot@public.aggre.bookTicker.v3.api.pb@100ms@NEWUSDT") + key(315, 2) + bytes([len(body)]) + body
        push = decode_push(frame)
        assert push.body == PublicAggreBookTickerV3Api(Decimal("0.998"), Decimal("10"), Decimal("1.002"), Decimal("20.25"))

    def test_private_deal(self) -> None:
        body = (
            ld(1, b"1.25") + ld(2, b"8") + ld(3, b"10") + key(4, 0) + b"\x01" + key(5, 0) + b"\x01"
            + ld(7, b"T1") + ld(8, b"snipe-1") + ld(9, b"O1") + ld(10, b"0.005") + ld(11, b"USDT")
            + key(12, 0) + encode_varint(1_700_000_000_999)
        )
        frame = ld(1, b"spot@private.deals.v3.api.pb") + ld(3, b"NEWUSDT") + key(306, 2) + bytes([len(body)]) + body
        deal = decode_push(frame).body
        assert deal == PrivateDealsV3Api(
            price=Decimal("1.25"), quantity=Decimal("8"), amount=Decimal("10"), trade_type=1, is_maker=True,
            trade_id="T1", client_order_id="snipe-1", order_id="O1", fee_amount=Decimal("0.005"),
            fee_currency="USDT", time=1_700_000_000_999,
        )

    def test_negative_int32_ten_byte_varint(self) -> None:
        # A negative int32 is sign-extended to 64 bits on the wire.
        body = key(3, 0) + encode_varint(-2)
        assert PublicAggreDealsV3ApiItem.decode(body).trade_type == -2
        assert len(encode_varint(-2)) == 10

    def test_unmodelled_body_is_kept_raw(self) -> None:
        frame = ld(1, b"spot@public.kline.v3.api.pb@NEWUSDT@Min1") + key(308, 2) + b"\x02\x08\x01"
        push = decode_push(frame)
        assert push.body == RawBody(308, b"\x08\x01")
        assert push.encode() == frame

    def test_empty_message_is_all_defaults(self) -> None:
        assert decode_push(b"") == PushDataV3ApiWrapper()


# --- unknown fields ---------------------------------------------------------------------------------


class TestUnknownFields:
    def test_every_wire_type_is_skipped(self) -> None:
        before = key(99, 0) + encode_varint(123456789) + key(100, 1) + b"\x01" * 8  # varint, 64-bit
        after = (
            ld(101, b"some new thing")  # length-delimited
            + key(102, 5) + b"\x02" * 4  # 32-bit
            + key(2, 0) + b"\x05"  # field 2 is not in the envelope's schema: unknown to us
        )
        frame = before + HAND_BUILT_DEALS + after
        assert decode_push(frame) == decode_push(HAND_BUILT_DEALS)

    def test_unknown_fields_inside_a_body(self) -> None:
        item = DEAL_ITEM + key(50, 0) + b"\x01" + ld(51, b"x")
        assert PublicAggreDealsV3ApiItem.decode(item) == PublicAggreDealsV3ApiItem.decode(DEAL_ITEM)

    def test_iter_fields_reports_raw_values(self) -> None:
        data = key(1, 0) + b"\x96\x01" + key(2, 1) + (5).to_bytes(8, "little") + key(3, 5) + (7).to_bytes(4, "little")
        assert list(iter_fields(data)) == [(1, 0, 150), (2, 1, 5), (3, 5, 7)]


# --- round trips -----------------------------------------------------------------------------------

ORDER = PrivateOrdersV3Api(
    id="C02__123",
    client_id="snipe-abc",
    price=Decimal("0"),
    quantity=Decimal("0"),
    amount=Decimal("10.00"),
    avg_price=Decimal("0.0123456789"),
    order_type=5,
    trade_type=1,
    is_maker=False,
    remain_amount=Decimal("0"),
    remain_quantity=Decimal("0"),
    last_deal_quantity=Decimal("810.02"),
    cumulative_quantity=Decimal("810.02"),
    cumulative_amount=Decimal("9.99999"),
    status=2,
    create_time=1_700_000_000_555,
    market="USDT",
    trigger_type=0,
    state=0,
    symbol_id="abc123",
)

ROUND_TRIPS = [
    PushDataV3ApiWrapper(
        "spot@public.aggre.deals.v3.api.pb@10ms@NEWUSDT",
        PublicAggreDealsV3Api(
            (
                PublicAggreDealsV3ApiItem(Decimal("0.000000012"), Decimal("1E+3"), 1, 1_700_000_000_001),
                PublicAggreDealsV3ApiItem(Decimal("123456789.123456789"), Decimal("0.1"), 2, 1_700_000_000_002),
            ),
            "spot@public.aggre.deals.v3.api.pb@10ms",
        ),
        "NEWUSDT",
        "sid",
        1,
        2,
    ),
    PushDataV3ApiWrapper("spot@public.aggre.bookTicker.v3.api.pb@100ms@X1USDT", PublicAggreBookTickerV3Api(Decimal("1"), None, Decimal("2.50"), Decimal("3")), "X1USDT"),
    PushDataV3ApiWrapper("spot@private.orders.v3.api.pb", ORDER, "NEWUSDT", None, None, 1_700_000_000_556),
    PushDataV3ApiWrapper("spot@private.deals.v3.api.pb", PrivateDealsV3Api(Decimal("1"), Decimal("2"), Decimal("2"), 2, True, True, "t", "c", "o", Decimal("0.002"), "USDT", 5)),
    PushDataV3ApiWrapper("spot@private.account.v3.api.pb", PrivateAccountV3Api("USDT", "1", Decimal("90.5"), Decimal("-9.5"), Decimal("0"), Decimal("0"), "ENTRUST", 9)),
    PushDataV3ApiWrapper("spot@public.aggre.depth.v3.api.pb@100ms@NEWUSDT", RawBody(313, b"\x0a\x00"), "NEWUSDT"),
    PushDataV3ApiWrapper(""),
]


class TestRoundTrips:
    @pytest.mark.parametrize("message", ROUND_TRIPS, ids=lambda m: m.channel or "empty")
    def test_encode_then_decode_is_identity(self, message: PushDataV3ApiWrapper) -> None:
        assert decode_push(message.encode()) == message

    def test_decimal_digits_survive_exactly(self) -> None:
        item = PublicAggreDealsV3ApiItem(Decimal("0.000012340"), Decimal("100.00"), 1, 1)
        decoded = PublicAggreDealsV3ApiItem.decode(item.encode())
        assert str(decoded.price) == "0.000012340"
        assert str(decoded.quantity) == "100.00"

    def test_optional_fields_keep_presence(self) -> None:
        # `optional` fields set to their zero value are still written (and read back).
        decoded = PrivateOrdersV3Api.decode(PrivateOrdersV3Api(trigger_type=0, state=0, market="").encode())
        assert (decoded.trigger_type, decoded.state, decoded.market) == (0, 0, "")
        absent = PrivateOrdersV3Api.decode(PrivateOrdersV3Api().encode())
        assert (absent.trigger_type, absent.state, absent.market) == (None, None, None)

    def test_defaults_are_not_written(self) -> None:
        assert PrivateDealsV3Api().encode() == b""
        assert PushDataV3ApiWrapper().encode() == b""

    def test_body_field_numbers(self) -> None:
        assert next(iter_fields(PushDataV3ApiWrapper(body=PublicAggreDealsV3Api()).encode()))[0] == PUBLIC_AGGRE_DEALS
        assert next(iter_fields(PushDataV3ApiWrapper(body=PublicAggreBookTickerV3Api()).encode()))[0] == PUBLIC_AGGRE_BOOK_TICKER
        assert next(iter_fields(PushDataV3ApiWrapper(body=PrivateDealsV3Api()).encode()))[0] == PRIVATE_DEALS

    def test_writer_fixed_width_fields(self) -> None:
        data = Writer().fixed64(1, 2**63).fixed32(2, 7).fixed64(3, 0).finish()
        assert list(iter_fields(data)) == [(1, 1, 2**63), (2, 5, 7)]


# --- malformed input --------------------------------------------------------------------------------


class TestMalformed:
    @pytest.mark.parametrize("cut", range(1, len(HAND_BUILT_DEALS)))
    def test_every_truncation_raises_the_decode_error_or_decodes(self, cut: int) -> None:
        """A prefix that ends on a field boundary is itself a valid message; any other
        prefix must raise ProtobufDecodeError (never IndexError or anything else)."""
        try:
            decode_push(HAND_BUILT_DEALS[:cut])
        except ProtobufDecodeError:
            pass

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            (HAND_BUILT_DEALS[:-1], "truncated length-delimited"),
            (ld(1, b"abc")[:-1], "truncated length-delimited"),
            (key(1, 2) + b"\x80", "truncated varint"),
            (key(5, 0), "truncated varint"),
            (key(7, 1) + b"\x00" * 7, "truncated 64-bit"),
            (key(7, 5) + b"\x00" * 3, "truncated 32-bit"),
            (key(7, 3), "wire type 3"),
            (key(7, 4), "wire type 4"),
            (key(7, 6), "wire type 6"),
            (b"\x00\x01", "field number 0"),
            (ld(1, b"\xff\xfe"), "UTF-8"),
            (key(1, 0) + b"\x01", "wire type 0, expected 2"),
            (key(5, 2) + b"\x00", "wire type 2, expected 0"),
            (key(314, 0) + b"\x01", "expected 2"),
        ],
    )
    def test_specific_errors(self, data: bytes, message: str) -> None:
        with pytest.raises(ProtobufDecodeError, match=message):
            decode_push(data)

    @pytest.mark.parametrize("price", [b"abc", b"NaN", b"Infinity", b"1e", b"--1"])
    def test_a_price_that_is_not_a_finite_decimal(self, price: bytes) -> None:
        item = ld(1, price)
        with pytest.raises(ProtobufDecodeError, match="field 1"):
            PublicAggreDealsV3ApiItem.decode(item)

    def test_a_truncated_nested_body(self) -> None:
        body = DEALS_BODY[:-3]
        frame = ld(1, CHANNEL) + key(314, 2) + bytes([len(body)]) + body
        with pytest.raises(ProtobufDecodeError):
            decode_push(frame)

    def test_not_bytes(self) -> None:
        with pytest.raises(ProtobufDecodeError):
            decode_push("text")  # type: ignore[arg-type]

    def test_random_garbage_only_ever_raises_the_decode_error(self) -> None:
        rng = random.Random(20250601)
        frames = [ROUND_TRIPS[i % len(ROUND_TRIPS)].encode() for i in range(len(ROUND_TRIPS))]
        for i in range(3000):
            if i % 2:
                data = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64)))
            else:  # flip bytes of a real frame: closer to plausible corruption
                data = bytearray(frames[i % len(frames)])
                for _ in range(rng.randint(1, 4)):
                    if data:
                        data[rng.randrange(len(data))] = rng.getrandbits(8)
                data = bytes(data)
            try:
                decode_push(data)
            except ProtobufDecodeError:
                pass
