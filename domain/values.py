"""Value objects. Money and quantities are Decimal end to end."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from enum import Enum

from domain.errors import InvalidValue

# Quote amounts (USDT) are carried to this many places when a share must be allocated.
MONEY_PLACES = Decimal("0.00000001")


def to_decimal(value: object, what: str) -> Decimal:
    """Turn a str/int/Decimal into a finite Decimal; floats are refused on purpose."""
    if isinstance(value, (bool, float)):
        raise InvalidValue(f"{what} must be given as a decimal string, not {type(value).__name__}: {value!r}")
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, (int, str)):
        try:
            d = Decimal(str(value).strip())
        except InvalidOperation:
            raise InvalidValue(f"{what} is not a number: {value!r}") from None
    else:
        raise InvalidValue(f"{what} must be a decimal, got {type(value).__name__}")
    if not d.is_finite():
        raise InvalidValue(f"{what} must be finite: {value!r}")
    return d


def quantize_money(amount: Decimal) -> Decimal:
    return amount.quantize(MONEY_PLACES, rounding=ROUND_HALF_EVEN)


# Rounding to a scale keeps every digit before the point: under the default 28 digits, 50 USDT
# of a 1E-12 coin to 18 places (32 digits) would raise InvalidOperation instead.
_EXACT = Context(prec=64)


def round_down_to_scale(amount: Decimal, scale: int) -> Decimal:
    """Round toward zero to `scale` decimal places (exchange step for quantities)."""
    return amount.quantize(Decimal(1).scaleb(-scale, _EXACT), rounding=ROUND_DOWN, context=_EXACT)


_SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,20}$")
_ASSET_RE = re.compile(r"^[A-Z0-9]{1,16}$")


@dataclass(frozen=True, slots=True)
class Symbol:
    """A spot pair, e.g. NEWUSDT = base NEW quoted in USDT."""

    base: str
    quote: str

    def __post_init__(self) -> None:
        for part, name in ((self.base, "base asset"), (self.quote, "quote asset")):
            if not _ASSET_RE.fullmatch(part):
                raise InvalidValue(f"{name} must be 1-16 upper-case letters or digits: {part!r}")

    @property
    def code(self) -> str:
        return f"{self.base}{self.quote}"

    def __str__(self) -> str:
        return self.code

    @classmethod
    def parse(cls, code: str, quote: str = "USDT") -> Symbol:
        code = code.strip().upper()
        if not _SYMBOL_RE.fullmatch(code) or not code.endswith(quote) or len(code) == len(quote):
            raise InvalidValue(f"symbol {code!r} is not a {quote} pair")
        return cls(code[: -len(quote)], quote)


@dataclass(frozen=True, slots=True)
class Price:
    value: Decimal

    def __post_init__(self) -> None:
        # Always through to_decimal: a Decimal can still be NaN or infinite.
        object.__setattr__(self, "value", to_decimal(self.value, "price"))
        if self.value <= 0:
            raise InvalidValue(f"price must be positive: {self.value}")

    def __str__(self) -> str:
        return format(self.value, "f")


@dataclass(frozen=True, slots=True)
class Quantity:
    value: Decimal

    def __post_init__(self) -> None:
        # Always through to_decimal: a Decimal can still be NaN or infinite.
        object.__setattr__(self, "value", to_decimal(self.value, "quantity"))
        if self.value < 0:
            raise InvalidValue(f"quantity must not be negative: {self.value}")

    def __str__(self) -> str:
        return format(self.value, "f")


@dataclass(frozen=True, slots=True)
class QuoteAmount:
    """An amount of the quote asset (e.g. USDT) to spend or received."""

    value: Decimal
    asset: str = "USDT"

    def __post_init__(self) -> None:
        # Always through to_decimal: a Decimal can still be NaN or infinite.
        object.__setattr__(self, "value", to_decimal(self.value, "quote amount"))
        if self.value < 0:
            raise InvalidValue(f"quote amount must not be negative: {self.value}")
        if not _ASSET_RE.fullmatch(self.asset):
            raise InvalidValue(f"quote asset must be upper-case letters or digits: {self.asset!r}")

    def __str__(self) -> str:
        return f"{format(self.value, 'f')} {self.asset}"


@dataclass(frozen=True, slots=True)
class Percentage:
    """A percentage such as 12.5 (meaning 12.5 %)."""

    value: Decimal

    def __post_init__(self) -> None:
        # Always through to_decimal: a Decimal can still be NaN or infinite.
        object.__setattr__(self, "value", to_decimal(self.value, "percentage"))

    @property
    def fraction(self) -> Decimal:
        return self.value / 100

    def __str__(self) -> str:
        return f"{format(self.value.normalize(), 'f')}%"


_CLIENT_ORDER_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


@dataclass(frozen=True, slots=True)
class ClientOrderId:
    """Our own id for an order, so a reply lost in transit can be resolved by query.

    MEXC documents no rule; we keep to 32 characters of [A-Za-z0-9_-].
    """

    value: str

    def __post_init__(self) -> None:
        if not _CLIENT_ORDER_ID_RE.fullmatch(self.value):
            raise InvalidValue(f"client order id must be 1-32 of [A-Za-z0-9_-]: {self.value!r}")

    def __str__(self) -> str:
        return self.value


class SymbolStatus(Enum):
    """Where a listing stands on its way to trading, from MEXC's (sts, st, tt) codes."""

    ANNOUNCED = "announced"
    PREPARING = "preparing"
    READY = "ready"


@dataclass(frozen=True, slots=True)
class SymbolState:
    """MEXC's per-symbol web state codes and announced open time (epoch ms, may be absent)."""

    sts: int
    st: int
    tt: int
    open_time_ms: int | None = None

    def __post_init__(self) -> None:
        for name in ("sts", "st", "tt"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise InvalidValue(f"symbol state {name} must be a non-negative integer: {v!r}")
