"""Reading a JSON input file (a replay scenario, a recording) into its msgspec type, with one
clear line naming the file and the place when it cannot be used; and the bounds of what a
replay can play, which both kinds of file keep to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import msgspec

from application.errors import ConfigurationError

T = TypeVar("T")

# Beyond these a replay cannot be played: dates overflow, decimals overflow or round away,
# or the run never ends (it steps through its whole span). They are far wider than any
# listing: README.md, "Replay scenario format", states them for authors.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)  # times lie in [EARLIEST, LATEST)
MIN_PRICE = Decimal("1E-12")
MAX_PRICE = Decimal("1E+9")
MAX_AMOUNT = Decimal("1E+9")  # quote amounts, minimum notionals, risk limits
LONGEST = timedelta(days=7)  # a scenario from start to end; a price path after its open


def time_problem(moment: datetime) -> str | None:
    """Why `moment` cannot be a replay's time; None when it can."""
    if moment.tzinfo is None:
        return "time must carry a time zone (e.g. 2026-11-25T10:00:00Z)"
    if not EARLIEST <= moment < LATEST:
        return f"must be from {EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d}, got {moment.isoformat()}"
    return None


def number_problem(value: Decimal, low: Decimal, high: Decimal) -> str | None:
    """Why `value` is not a number in [low, high]; None when it is."""
    # NaN and infinities decode as Decimals too, and NaN cannot even be compared.
    if not value.is_finite():
        return f"must be a finite number, got {value}"
    if not low <= value <= high:
        return f"must be between {low} and {high}, got {_short(value)}"
    return None


def _short(value: Decimal) -> str:
    text = str(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def read_input(path: Path, kind: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"{kind} {path}: cannot be read: {exc.strerror or exc}") from None


def decode_input(raw: bytes, type_: type[T], kind: str, source: str) -> T:
    try:
        return msgspec.json.decode(raw, type=type_)
    except msgspec.ValidationError as exc:
        raise ConfigurationError(f"{kind} {source}: {_where(str(exc))}") from None
    except msgspec.DecodeError as exc:
        raise ConfigurationError(f"{kind} {source}: not valid JSON: {exc}") from None


def _where(message: str) -> str:
    # msgspec says "Expected `str`, got `int` - at `$.listings[0].coin_id`": put the place first.
    if " - at `$" in message:
        what, where = message.rsplit(" - at `$", 1)
        return f"{where.rstrip('`').lstrip('.') or 'top level'}: {what}"
    # At the root msgspec names no path at all.
    return f"top level: {message}"
