"""Listing recordings for backtests: one JSON file per listing, its price path after launch.

A file holds `symbol` (e.g. `PUMPUSDT`), optional `quote_asset` (default USDT), `launch_at` (an
aware ISO time), `quote_amount` (what a snipe spends, a decimal string), optional `quantity_scale`
(decimal places of the bought quantity, default 2), and `prices`: `t` seconds after launch and
`price`, both decimal strings, in strictly increasing time. `description`, `shape` and `synthetic`
are free notes. Every file is checked whole before any backtest runs; a bad one is refused in one
line naming the file and the place (`recordings/x.json: prices[3].price: must be positive, got -1`),
and so is one outside the bounds a replay can play (adapters/paper/json_input.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

import msgspec

from adapters.paper.json_input import (
    LONGEST,
    MAX_AMOUNT,
    MAX_PRICE,
    MIN_PRICE,
    decode_input,
    number_problem,
    read_input,
    time_problem,
)
from application.errors import ConfigurationError
from application.ports import ListingRecording, RecordedPrice
from domain.errors import DomainError
from domain.values import Symbol, round_down_to_scale

BUNDLED_RECORDINGS = Path(__file__).parent / "recordings"


class _Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Subclasses repeat frozen=True: msgspec inherits it, but type checkers do not see it inherited."""


# Numbers are decimal strings, never JSON numbers: what is written is exactly what is read.
class PointSpec(_Strict, frozen=True):
    t: str
    price: str


class RecordingSpec(_Strict, frozen=True):
    symbol: str
    launch_at: datetime
    quote_amount: str
    prices: list[PointSpec]
    quote_asset: str = "USDT"
    quantity_scale: int = 2
    description: str = ""
    shape: str = ""
    synthetic: bool = False


class RecordingDirectory:
    """RecordingSource over a directory of `*.json` recordings, read in name order."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def recordings(self) -> list[ListingRecording]:
        if not self.directory.is_dir():
            raise ConfigurationError(f"recordings {self.directory}: not a directory")
        files = sorted(self.directory.glob("*.json"))
        if not files:
            raise ConfigurationError(f"recordings {self.directory}: no *.json recordings in it")
        return [load_recording(path) for path in files]


def load_recording(path: Path) -> ListingRecording:
    return parse_recording(read_input(path, "recording"), str(path))


def parse_recording(raw: bytes, source: str = "recording") -> ListingRecording:
    spec = decode_input(raw, RecordingSpec, "recording", source)
    try:
        return _checked(spec, source)
    except _Refused as exc:
        raise ConfigurationError(f"recording {source}: {exc}") from None


class _Refused(Exception):
    pass


def _decimal(text: str, where: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise _Refused(f"{where}: not a decimal number: {text!r}") from None
    # NaN and infinities parse as Decimals too, and NaN cannot even be compared.
    if not value.is_finite():
        raise _Refused(f"{where}: must be a finite number, got {text}")
    return value


def _checked(spec: RecordingSpec, source: str) -> ListingRecording:
    try:
        symbol = Symbol.parse(spec.symbol, spec.quote_asset)
    except DomainError as exc:
        raise _Refused(f"symbol: {exc}") from None
    if (problem := time_problem(spec.launch_at)) is not None:
        raise _Refused(f"launch_at: {problem}")
    quote_amount = _decimal(spec.quote_amount, "quote_amount")
    if quote_amount <= 0:
        raise _Refused(f"quote_amount: must be positive, got {quote_amount}")
    if (problem := number_problem(quote_amount, Decimal(0), MAX_AMOUNT)) is not None:
        raise _Refused(f"quote_amount: {problem}")
    if not (0 <= spec.quantity_scale <= 18):
        raise _Refused(f"quantity_scale: must be between 0 and 18, got {spec.quantity_scale}")
    if not spec.prices:
        raise _Refused("prices: a recording needs at least one price after launch")
    points: list[RecordedPrice] = []
    last_t: Decimal | None = None
    for j, p in enumerate(spec.prices):
        where = f"prices[{j}]"
        t, price = _decimal(p.t, f"{where}.t"), _decimal(p.price, f"{where}.price")
        if price <= 0:
            raise _Refused(f"{where}.price: must be positive, got {price}")
        if (problem := number_problem(price, MIN_PRICE, MAX_PRICE)) is not None:
            raise _Refused(f"{where}.price: {problem}")
        if t < 0:
            raise _Refused(f"{where}.t: seconds after launch must not be negative, got {t}")
        if t > LONGEST.total_seconds():
            raise _Refused(f"{where}.t: more than a week after launch ({t} s)")
        if last_t is not None and t <= last_t:
            raise _Refused(f"{where}.t: times must strictly increase ({t} after {last_t})")
        last_t = t
        points.append(RecordedPrice(spec.launch_at + timedelta(microseconds=int(t * 1_000_000)), price))
    if round_down_to_scale(quote_amount / points[0].price, spec.quantity_scale) <= 0:
        raise _Refused(
            f"quote_amount: {quote_amount} buys nothing at the first price {points[0].price} "
            f"with quantity_scale {spec.quantity_scale}"
        )
    return ListingRecording(source, symbol, spec.launch_at, quote_amount, spec.quantity_scale, tuple(points))
