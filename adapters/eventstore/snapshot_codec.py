"""An aggregate's snapshot state to and from JSON text, exactly.

The state is a dict of field values: None, bool, int, str, Decimal, datetime, date, timedelta,
enums and frozen dataclasses of the domain (values, exit plans, events), and lists, tuples,
sets and dicts of those. JSON has no such types, so each travels tagged: {"$dec": "0.00009512"}
keeps every digit and the exponent, {"$dt": "2026-11-25T12:00:00.000001+00:00"} the instant and
its offset, {"$obj": "domain.values.Symbol", "fields": {...}} a dataclass by its full name.

Decoding trusts nothing: a class that is not one of the domain's, a dataclass whose field names
differ from today's, an enum value that no longer exists, a float (money is never a float), or
an unknown tag raise SnapshotUnreadable, and the repository folds from the first event instead.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import Enum
from types import ModuleType
from typing import Any

from domain import events, exit_plans, listing, position, safety, target, values


class SnapshotUnreadable(ValueError):
    pass


_DOMAIN_MODULES: tuple[ModuleType, ...] = (values, exit_plans, events, target, position, safety, listing)


def _domain_types() -> dict[str, type]:
    found: dict[str, type] = {}
    for module in _DOMAIN_MODULES:
        for obj in vars(module).values():
            if isinstance(obj, type) and obj.__module__ == module.__name__:
                if issubclass(obj, Enum) or dataclasses.is_dataclass(obj):
                    found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return found


_TYPES = _domain_types()


def encode_state(state: dict[str, object]) -> str:
    """JSON text of a snapshot state; TypeError for a value it cannot carry exactly."""
    return json.dumps({name: _encode(value) for name, value in state.items()}, separators=(",", ":"), sort_keys=True)


def decode_state(text: str) -> dict[str, object]:
    try:
        raw = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise SnapshotUnreadable(f"not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise SnapshotUnreadable("a snapshot state is an object of fields")
    return {name: _decode(value) for name, value in raw.items()}


def read_snapshot(version: int, shape: str, state: str, wanted_shape: str) -> tuple[int, dict[str, object]] | None:
    """A stored snapshot as (version, state) if it is of the wanted shape and readable, else None."""
    if shape != wanted_shape:
        return None
    try:
        return version, decode_state(state)
    except SnapshotUnreadable:
        return None


def _encode(value: object) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, Enum):  # before int: an IntEnum is an int too
        return {"$enum": _name_of(type(value)), "value": _encode(value.value)}
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        return {"$dec": str(value)}
    if isinstance(value, datetime):  # before date: a datetime is a date too
        return {"$dt": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, timedelta):
        return {"$td": [value.days, value.seconds, value.microseconds]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
        return {"$obj": _name_of(type(value)), "fields": fields}
    if isinstance(value, list):
        return [_encode(item) for item in value]
    if isinstance(value, tuple):
        return {"$tuple": [_encode(item) for item in value]}
    if isinstance(value, (set, frozenset)):
        items = sorted((_encode(item) for item in value), key=lambda x: json.dumps(x, sort_keys=True))
        return {"$fset" if isinstance(value, frozenset) else "$set": items}
    if isinstance(value, dict):
        return {"$dict": [[_encode(k), _encode(v)] for k, v in value.items()]}
    raise TypeError(f"a snapshot cannot carry {type(value).__name__} exactly: {value!r}")


def _name_of(cls: type) -> str:
    name = f"{cls.__module__}.{cls.__qualname__}"
    if _TYPES.get(name) is not cls:
        raise TypeError(f"{name} is not a domain type a snapshot may hold")
    return name


def _decode(raw: Any) -> object:
    if raw is None or isinstance(raw, (bool, str, int)):
        return raw
    if isinstance(raw, list):
        return [_decode(item) for item in raw]
    if not isinstance(raw, dict) or len(raw) not in (1, 2):
        raise SnapshotUnreadable(f"unexpected value {raw!r}")
    try:
        return _decode_tagged(raw)
    except SnapshotUnreadable:
        raise
    except (TypeError, ValueError, KeyError, InvalidOperation, OverflowError) as exc:
        raise SnapshotUnreadable(f"cannot rebuild {raw!r}: {exc}") from exc


def _decode_tagged(raw: dict[str, Any]) -> object:
    if "$dec" in raw:
        number = Decimal(raw["$dec"])
        if not isinstance(raw["$dec"], str) or not number.is_finite():
            raise SnapshotUnreadable(f"not an exact decimal: {raw!r}")
        return number
    if "$dt" in raw:
        return datetime.fromisoformat(raw["$dt"])
    if "$date" in raw:
        return date.fromisoformat(raw["$date"])
    if "$td" in raw:
        days, seconds, micros = raw["$td"]
        return timedelta(days=days, seconds=seconds, microseconds=micros)
    if "$tuple" in raw:
        return tuple(_decode(item) for item in raw["$tuple"])
    if "$set" in raw:
        return {_decode(item) for item in raw["$set"]}
    if "$fset" in raw:
        return frozenset(_decode(item) for item in raw["$fset"])
    if "$dict" in raw:
        return {_decode(k): _decode(v) for k, v in raw["$dict"]}
    if "$enum" in raw:
        cls = _known(raw["$enum"])
        if not issubclass(cls, Enum):
            raise SnapshotUnreadable(f"{raw['$enum']} is not an enum")
        return cls(_decode(raw["value"]))
    if "$obj" in raw:
        cls = _known(raw["$obj"])
        if not dataclasses.is_dataclass(cls):
            raise SnapshotUnreadable(f"{raw['$obj']} is not a dataclass")
        stored = raw["fields"]
        expected = {f.name for f in dataclasses.fields(cls) if f.init}
        if not isinstance(stored, dict) or set(stored) != expected:
            raise SnapshotUnreadable(f"{raw['$obj']} has fields {sorted(expected)} now, the snapshot {sorted(stored)}")
        return cls(**{name: _decode(value) for name, value in stored.items()})
    raise SnapshotUnreadable(f"unknown tag in {raw!r}")


def _known(name: object) -> type:
    cls = _TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise SnapshotUnreadable(f"{name!r} is not a domain type this version knows")
    return cls
