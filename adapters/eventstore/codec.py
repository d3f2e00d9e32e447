"""Event payloads to and from JSON with msgspec. Decimal travels as a string, never a float."""

from __future__ import annotations

import msgspec

from domain.events import EVENT_TYPES, DomainEvent

_encoder = msgspec.json.Encoder(decimal_format="string")
_decoders = {name: msgspec.json.Decoder(cls) for name, cls in EVENT_TYPES.items()}


class UnknownEventType(Exception):
    pass


def encode_event(event: DomainEvent) -> tuple[str, bytes]:
    name = type(event).__name__
    if name not in _decoders:
        raise UnknownEventType(f"{name} is not a stored event type")
    return name, _encoder.encode(event)


def decode_event(event_type: str, payload: bytes | str) -> DomainEvent:
    decoder = _decoders.get(event_type)
    if decoder is None:
        raise UnknownEventType(f"stored event type {event_type!r} is unknown to this version")
    data = payload.encode() if isinstance(payload, str) else payload
    return decoder.decode(data)
