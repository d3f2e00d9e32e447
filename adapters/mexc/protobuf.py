"""MEXC's WebSocket protobuf messages, decoded and encoded by the `protobuf` library (its C upb backend).

The schema is MEXC's own: the .proto files they publish, kept unmodified in adapters/mexc/proto/
(Apache-2.0, see proto/SOURCE.md). `python -m tools.mexc_proto` compiles them (protoc, from
grpcio-tools, build time only) into the descriptor set of adapters/mexc/push_schema.py; the
message classes are built from it here, at import, in a pool of their own: ccxt ships an older
copy of the same files under the same names in protobuf's default pool, and the two must not
meet in one process.

The classes are the generated ones (fields named as in the .proto: `publicAggreDeals`,
`tradeType`, `createTime`...; the envelope's body is the `body` oneof). Prices and quantities
travel as strings: `read_decimal` turns one into a bounded Decimal. Anything malformed on the
wire (truncated, bad varint, invalid UTF-8 in a string...) raises ProtobufDecodeError; unknown
fields are kept aside and ignored, as protobuf requires, so MEXC may add fields.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

from adapters.mexc.models import bounded_decimal
from adapters.mexc.push_schema import DESCRIPTOR_SET

_POOL = descriptor_pool.DescriptorPool()
for _file in descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET).file:
    _POOL.Add(_file)


def _message(name: str) -> Any:
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(name))


PushDataV3ApiWrapper = _message("PushDataV3ApiWrapper")
PublicAggreDealsV3Api = _message("PublicAggreDealsV3Api")
PublicAggreDealsV3ApiItem = _message("PublicAggreDealsV3ApiItem")
PublicAggreBookTickerV3Api = _message("PublicAggreBookTickerV3Api")
PrivateOrdersV3Api = _message("PrivateOrdersV3Api")
PrivateDealsV3Api = _message("PrivateDealsV3Api")
PrivateAccountV3Api = _message("PrivateAccountV3Api")

# The envelope's oneof member for each body type: "PublicAggreDealsV3Api" -> "publicAggreDeals".
BODY_FIELDS: dict[str, str] = {
    f.message_type.full_name: f.name for f in PushDataV3ApiWrapper.DESCRIPTOR.oneofs_by_name["body"].fields
}


class ProtobufDecodeError(ValueError):
    """The bytes are not a valid encoding of the expected message."""


def decode_push(data: bytes) -> Any:
    """Decode one binary WebSocket frame (a PushDataV3ApiWrapper); raises ProtobufDecodeError if malformed."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ProtobufDecodeError(f"expected bytes, got {type(data).__name__}")
    push = PushDataV3ApiWrapper()
    try:
        push.ParseFromString(data)
    except DecodeError as exc:
        raise ProtobufDecodeError(str(exc) or "not a PushDataV3ApiWrapper") from None
    return push


def encode_push(
    channel: str,
    body: Message | None = None,
    symbol: str | None = None,
    create_time: int | None = None,
    send_time: int | None = None,
) -> bytes:
    """One frame as MEXC sends it: the envelope around `body` (a message of one of the oneof's types)."""
    push = PushDataV3ApiWrapper(channel=channel)
    if symbol is not None:
        push.symbol = symbol
    if create_time is not None:
        push.createTime = create_time
    if send_time is not None:
        push.sendTime = send_time
    if body is not None:
        getattr(push, BODY_FIELDS[body.DESCRIPTOR.full_name]).CopyFrom(body)
    return push.SerializeToString()


def read_decimal(text: str, what: str) -> Decimal | None:
    """A price, quantity or amount field: None when empty (proto3 leaves an unset string empty);
    ProtobufDecodeError when it is not a finite decimal within the bounds (models.bounded_decimal)."""
    text = text.strip()
    if not text:
        return None
    value, problem = bounded_decimal(text)
    if problem is not None:
        problem = "is not a decimal number" if problem == "is not a decimal" else problem
        raise ProtobufDecodeError(f"{what} {problem}: {text[:40]!r}" + ("..." if len(text) > 40 else ""))
    return value
