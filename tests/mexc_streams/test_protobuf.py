"""MEXC's WebSocket messages through the `protobuf` library and MEXC's published schema:
frames built here byte by byte from the documented field numbers decode to what they say,
our encoder writes the same bytes, the committed descriptor set is the one the .proto files
compile to, and malformed input raises ProtobufDecodeError and nothing else."""

from __future__ import annotations

import contextlib
import random
from decimal import Decimal

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool

from adapters.mexc.protobuf import (
    BODY_FIELDS,
    PrivateAccountV3Api,
    PrivateDealsV3Api,
    PrivateOrdersV3Api,
    ProtobufDecodeError,
    PublicAggreBookTickerV3Api,
    PublicAggreDealsV3Api,
    PublicAggreDealsV3ApiItem,
    PushDataV3ApiWrapper,
    decode_push,
    encode_push,
    read_decimal,
)
from adapters.mexc.push_schema import DESCRIPTOR_SET
from tools import mexc_proto


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def key(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def ld(number: int, payload: bytes) -> bytes:
    """A length-delimited field, by hand."""
    return key(number, 2) + varint(len(payload)) + payload


# --- hand-built frames (field numbers from MEXC's documentation) --------------------------------

DEAL_ITEM = ld(1, b"0.00001234") + ld(2, b"1500.5") + key(3, 0) + b"\x02" + key(4, 0) + varint(1_700_000_000_123)
DEALS_BODY = ld(1, DEAL_ITEM) + ld(2, b"spot@public.aggre.deals.v3.api.pb@100ms")
CHANNEL = b"spot@public.aggre.deals.v3.api.pb@100ms@NEWUSDT"
HAND_BUILT_DEALS = (
    ld(1, CHANNEL)
    + ld(3, b"NEWUSDT")
    + key(5, 0) + varint(1_700_000_000_100)
    + key(6, 0) + varint(1_700_000_000_200)
    + ld(314, DEALS_BODY)
)


class TestSchema:
    def test_the_committed_descriptor_set_is_what_the_proto_files_compile_to(self) -> None:
        committed = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET)
        fresh = descriptor_pb2.FileDescriptorSet.FromString(mexc_proto.descriptor_set())
        assert {f.name: f for f in committed.file} == {f.name: f for f in fresh.file}

    def test_the_body_field_numbers_we_rely_on(self) -> None:
        by_number = {f.number: f.name for f in PushDataV3ApiWrapper.DESCRIPTOR.oneofs_by_name["body"].fields}
        assert by_number[314] == "publicAggreDeals"
        assert by_number[315] == "publicAggreBookTicker"
        assert (by_number[304], by_number[306], by_number[307]) == ("privateOrders", "privateDeals", "privateAccount")
        assert BODY_FIELDS["PublicAggreDealsV3Api"] == "publicAggreDeals"

    def test_the_classes_live_in_a_pool_of_their_own(self) -> None:
        # ccxt registers an older copy of the same files in the default pool: no clash.
        assert PushDataV3ApiWrapper.DESCRIPTOR.file.pool is not descriptor_pool.Default()


class TestHandBuiltBytes:
    def test_field_314_key_bytes(self) -> None:
        # (314 << 3) | 2 = 2514 -> varint d2 13
        assert key(314, 2) == b"\xd2\x13"

    def test_decode_an_aggregated_deals_push(self) -> None:
        push = decode_push(HAND_BUILT_DEALS)
        assert push.channel == CHANNEL.decode()
        assert push.symbol == "NEWUSDT"
        assert not push.HasField("symbolId")
        assert push.createTime == 1_700_000_000_100
        assert push.sendTime == 1_700_000_000_200
        assert push.WhichOneof("body") == "publicAggreDeals"
        assert push.publicAggreDeals.eventType == "spot@public.aggre.deals.v3.api.pb@100ms"
        [deal] = push.publicAggreDeals.deals
        assert str(read_decimal(deal.price, "price")) == "0.00001234"  # exact digits, no float on the way
        assert read_decimal(deal.quantity, "quantity") == Decimal("1500.5")
        assert deal.tradeType == 2
        assert deal.time == 1_700_000_000_123

    def test_our_encoding_is_byte_identical(self) -> None:
        item = PublicAggreDealsV3ApiItem(price="0.00001234", quantity="1500.5", tradeType=2, time=1_700_000_000_123)
        body = PublicAggreDealsV3Api(deals=[item], eventType="spot@public.aggre.deals.v3.api.pb@100ms")
        frame = encode_push(CHANNEL.decode(), body, "NEWUSDT", 1_700_000_000_100, 1_700_000_000_200)
        assert frame == HAND_BUILT_DEALS

    def test_book_ticker(self) -> None:
        body = ld(1, b"0.998") + ld(2, b"10") + ld(3, b"1.002") + ld(4, b"20.25")
        push = decode_push(ld(1, b"spot@public.aggre.bookTicker.v3.api.pb@100ms@NEWUSDT") + ld(315, body))
        assert push.publicAggreBookTicker == PublicAggreBookTickerV3Api(
            bidPrice="0.998", bidQuantity="10", askPrice="1.002", askQuantity="20.25"
        )

    def test_private_deal(self) -> None:
        body = (
            ld(1, b"1.25") + ld(2, b"8") + ld(3, b"10") + key(4, 0) + b"\x01" + key(5, 0) + b"\x01"
            + ld(7, b"T1") + ld(8, b"snipe-1") + ld(9, b"O1") + ld(10, b"0.005") + ld(11, b"USDT")
            + key(12, 0) + varint(1_700_000_000_999)
        )
        push = decode_push(ld(1, b"spot@private.deals.v3.api.pb") + ld(3, b"NEWUSDT") + ld(306, body))
        assert push.privateDeals == PrivateDealsV3Api(
            price="1.25", quantity="8", amount="10", tradeType=1, isMaker=True, tradeId="T1",
            clientOrderId="snipe-1", orderId="O1", feeAmount="0.005", feeCurrency="USDT", time=1_700_000_000_999,
        )

    def test_private_order_and_account(self) -> None:
        order = ld(1, b"C02__1") + ld(2, b"snipe-1") + ld(6, b"0.0123") + key(15, 0) + b"\x02" + key(16, 0) + varint(5)
        push = decode_push(ld(304, order))
        assert push.privateOrders == PrivateOrdersV3Api(
            id="C02__1", clientId="snipe-1", avgPrice="0.0123", status=2, createTime=5
        )
        assert not push.privateOrders.HasField("triggerType")  # `optional` keeps presence
        account = ld(1, b"USDT") + ld(3, b"90.5") + ld(7, b"ENTRUST") + key(8, 0) + b"\x09"
        assert decode_push(ld(307, account)).privateAccount == PrivateAccountV3Api(
            vcoinName="USDT", balanceAmount="90.5", type="ENTRUST", time=9
        )

    def test_negative_int32_ten_byte_varint(self) -> None:
        # A negative int32 is sign-extended to 64 bits on the wire.
        assert len(varint(-2)) == 10
        assert decode_push(ld(314, ld(1, key(3, 0) + varint(-2)))).publicAggreDeals.deals[0].tradeType == -2

    def test_a_body_we_do_not_use_is_decoded_and_ignored(self) -> None:
        push = decode_push(ld(1, b"spot@public.kline.v3.api.pb@NEWUSDT@Min1") + ld(308, b""))
        assert push.WhichOneof("body") == "publicSpotKline"

    def test_empty_message_is_all_defaults(self) -> None:
        push = decode_push(b"")
        assert push == PushDataV3ApiWrapper() and push.WhichOneof("body") is None


class TestUnknownFields:
    def test_every_wire_type_is_skipped(self) -> None:
        before = key(99, 0) + varint(123456789) + key(100, 1) + b"\x01" * 8  # varint, 64-bit
        after = ld(101, b"some new thing") + key(102, 5) + b"\x02" * 4 + key(2, 0) + b"\x05"
        push = decode_push(before + HAND_BUILT_DEALS + after)
        push.DiscardUnknownFields()
        assert push == decode_push(HAND_BUILT_DEALS)

    def test_unknown_fields_inside_a_body(self) -> None:
        item = DEAL_ITEM + key(50, 0) + b"\x01" + ld(51, b"x")
        push = decode_push(ld(314, ld(1, item)))
        push.DiscardUnknownFields()
        assert push == decode_push(ld(314, ld(1, DEAL_ITEM)))


class TestDecimals:
    def test_digits_survive_exactly(self) -> None:
        assert str(read_decimal("0.000012340", "price")) == "0.000012340"
        assert read_decimal("", "price") is None

    @pytest.mark.parametrize("text", ["abc", "NaN", "Infinity", "1e", "--1", "1E+1000000"])
    def test_not_a_finite_bounded_decimal(self, text: str) -> None:
        with pytest.raises(ProtobufDecodeError, match="price"):
            read_decimal(text, "price")


class TestMalformed:
    @pytest.mark.parametrize("cut", range(1, len(HAND_BUILT_DEALS)))
    def test_every_truncation_raises_the_decode_error_or_decodes(self, cut: int) -> None:
        """A prefix that ends on a field boundary is itself a valid message; any other
        prefix must raise ProtobufDecodeError (never anything else)."""
        with contextlib.suppress(ProtobufDecodeError):
            decode_push(HAND_BUILT_DEALS[:cut])

    @pytest.mark.parametrize(
        "data",
        [
            HAND_BUILT_DEALS[:-1],
            ld(1, b"abc")[:-1],
            key(1, 2) + b"\x80",
            key(5, 0),
            key(7, 1) + b"\x00" * 7,
            key(7, 5) + b"\x00" * 3,
            key(7, 4),
            key(7, 6),
            b"\x00\x01",
            ld(1, b"\xff\xfe"),  # invalid UTF-8 in a string
            ld(314, DEALS_BODY[:-3]),  # a truncated nested body
        ],
    )
    def test_malformed_frames(self, data: bytes) -> None:
        with pytest.raises(ProtobufDecodeError):
            decode_push(data)

    def test_not_bytes(self) -> None:
        with pytest.raises(ProtobufDecodeError):
            decode_push("text")  # type: ignore[arg-type]

    def test_random_garbage_only_ever_raises_the_decode_error(self) -> None:
        rng = random.Random(20250601)
        frames = [HAND_BUILT_DEALS, ld(315, ld(1, b"1")), ld(304, ld(1, b"C02__1") + key(16, 0) + varint(5))]
        for i in range(3000):
            if i % 2:
                data = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64)))
            else:  # flip bytes of a real frame: closer to plausible corruption
                corrupt = bytearray(frames[i % len(frames)])
                for _ in range(rng.randint(1, 4)):
                    corrupt[rng.randrange(len(corrupt))] = rng.getrandbits(8)
                data = bytes(corrupt)
            with contextlib.suppress(ProtobufDecodeError):
                decode_push(data)
