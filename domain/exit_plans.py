"""Exit plans: take-profit ladders, stop-loss, trailing stop and maximum hold time."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from domain.errors import InvalidValue, UnknownExitStrategy
from domain.specifications import Rule, Specification
from domain.values import to_decimal

HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class TakeProfitLevel:
    """Sell `sell_percent` of the original position once price is `gain_percent` above entry."""

    gain_percent: Decimal
    sell_percent: Decimal

    def __post_init__(self) -> None:
        gain = to_decimal(self.gain_percent, "take-profit gain percent")
        sell = to_decimal(self.sell_percent, "take-profit sell percent")
        if gain <= 0:
            raise InvalidValue(f"take-profit gain must be above 0%: {gain}")
        if not (0 < sell <= HUNDRED):
            raise InvalidValue(f"take-profit share must be in (0, 100]%: {sell}")
        object.__setattr__(self, "gain_percent", gain)
        object.__setattr__(self, "sell_percent", sell)


@dataclass(frozen=True, slots=True)
class ExitPlan:
    name: str
    take_profits: tuple[TakeProfitLevel, ...]
    stop_loss_percent: Decimal
    trailing_stop_percent: Decimal | None = None
    max_hold_seconds: int | None = None

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > 40:
            raise InvalidValue("exit plan name must be 1-40 characters")
        levels = tuple(self.take_profits)
        object.__setattr__(self, "take_profits", levels)
        gains = [lv.gain_percent for lv in levels]
        if gains != sorted(gains) or len(set(gains)) != len(gains):
            raise InvalidValue(f"exit plan {self.name!r}: take-profit gains must strictly increase")
        total = sum((lv.sell_percent for lv in levels), Decimal(0))
        if total > HUNDRED:
            raise InvalidValue(f"exit plan {self.name!r}: take-profit shares add up to {total}%, more than 100%")
        sl = to_decimal(self.stop_loss_percent, "stop-loss percent")
        if not (0 < sl < HUNDRED):
            raise InvalidValue(f"exit plan {self.name!r}: stop-loss must be in (0, 100)%: {sl}")
        object.__setattr__(self, "stop_loss_percent", sl)
        if self.trailing_stop_percent is not None:
            tr = to_decimal(self.trailing_stop_percent, "trailing stop percent")
            if not (0 < tr < HUNDRED):
                raise InvalidValue(f"exit plan {self.name!r}: trailing stop must be in (0, 100)%: {tr}")
            object.__setattr__(self, "trailing_stop_percent", tr)
        if self.max_hold_seconds is not None and (
            isinstance(self.max_hold_seconds, bool) or not isinstance(self.max_hold_seconds, int)
            or self.max_hold_seconds <= 0
        ):
            raise InvalidValue(f"exit plan {self.name!r}: max hold time must be a positive number of seconds")

    def take_profit_price(self, entry: Decimal, level: int) -> Decimal:
        return entry * (1 + self.take_profits[level].gain_percent / HUNDRED)

    def stop_loss_price(self, entry: Decimal) -> Decimal:
        return entry * (1 - self.stop_loss_percent / HUNDRED)


# --- bounds a trader can set --------------------------------------------------------------
# The structure above is what any plan must have to be followed at all (also one recorded long
# ago, which must still load); these bounds are what a person may set today: outside them a plan
# is a typo or cannot work (a 0.05 % gain is less than the fees both ways (0.1 % at MEXC's
# taker fee); a share under 1 % is below most pairs' minimum order; more than 5 levels or a hold beyond 30
# days is not a snipe). They are checked where a person sets a plan: an exit strategy saved, a plan
# file, a scenario.
MAX_TAKE_PROFIT_LEVELS = 5
GAIN_PERCENT_RANGE = (Decimal("0.5"), Decimal("1000"))
SELL_PERCENT_RANGE = (Decimal("1"), HUNDRED)
STOP_LOSS_PERCENT_RANGE = (Decimal("0.5"), Decimal("95"))
TRAILING_STOP_PERCENT_RANGE = (Decimal("0.5"), Decimal("50"))
MAX_HOLD_SECONDS_RANGE = (60, 30 * 24 * 3600)


def _within(value: Decimal | int, bounds: tuple[Decimal, Decimal] | tuple[int, int]) -> bool:
    return bounds[0] <= value <= bounds[1]


def _range(bounds: tuple[Decimal, Decimal]) -> str:
    return f"{bounds[0]}-{bounds[1]}%"


def exit_plan_bounds() -> Specification[ExitPlan]:
    """What a trader may set, one rule per field (see the README's exit plan format)."""
    levels = Rule[ExitPlan](
        "take-profit levels",
        lambda p: 1 <= len(p.take_profits) <= MAX_TAKE_PROFIT_LEVELS,
        lambda p: f"{len(p.take_profits)} take-profit levels; give 1 to {MAX_TAKE_PROFIT_LEVELS}",
    )
    gains = Rule[ExitPlan](
        "take-profit gain",
        lambda p: all(_within(lv.gain_percent, GAIN_PERCENT_RANGE) for lv in p.take_profits),
        lambda p: "take-profit gain " + ", ".join(
            f"{lv.gain_percent}%" for lv in p.take_profits if not _within(lv.gain_percent, GAIN_PERCENT_RANGE)
        ) + f" is outside {_range(GAIN_PERCENT_RANGE)}",
    )
    shares = Rule[ExitPlan](
        "take-profit share",
        lambda p: all(_within(lv.sell_percent, SELL_PERCENT_RANGE) for lv in p.take_profits),
        lambda p: "take-profit share " + ", ".join(
            f"{lv.sell_percent}%" for lv in p.take_profits if not _within(lv.sell_percent, SELL_PERCENT_RANGE)
        ) + f" is outside {_range(SELL_PERCENT_RANGE)}",
    )
    stop = Rule[ExitPlan](
        "stop-loss",
        lambda p: _within(p.stop_loss_percent, STOP_LOSS_PERCENT_RANGE),
        lambda p: f"stop-loss {p.stop_loss_percent}% is outside {_range(STOP_LOSS_PERCENT_RANGE)}",
    )
    trailing = Rule[ExitPlan](
        "trailing stop",
        lambda p: p.trailing_stop_percent is None or _within(p.trailing_stop_percent, TRAILING_STOP_PERCENT_RANGE),
        lambda p: f"trailing stop {p.trailing_stop_percent}% is outside {_range(TRAILING_STOP_PERCENT_RANGE)}",
    )
    hold = Rule[ExitPlan](
        "max hold time",
        lambda p: p.max_hold_seconds is None or _within(p.max_hold_seconds, MAX_HOLD_SECONDS_RANGE),
        lambda p: (f"max hold time {p.max_hold_seconds} s is outside 60 s (1 min) "
                   f"to {MAX_HOLD_SECONDS_RANGE[1]} s (30 days)"),
    )
    return levels & gains & shares & stop & trailing & hold


def within_bounds(plan: ExitPlan) -> ExitPlan:
    """The plan, when a trader may set it; else InvalidValue naming every bound it breaks."""
    unmet = exit_plan_bounds().unmet(plan)
    if unmet:
        raise InvalidValue(f"exit plan {plan.name!r}: " + "; ".join(unmet))
    return plan


def _plan(
    name: str, levels: list[tuple[str, str]], stop: str, trailing: str | None = None, hold: int | None = None,
) -> ExitPlan:
    return ExitPlan(
        name=name,
        take_profits=tuple(TakeProfitLevel(Decimal(g), Decimal(s)) for g, s in levels),
        stop_loss_percent=Decimal(stop),
        trailing_stop_percent=Decimal(trailing) if trailing else None,
        max_hold_seconds=hold,
    )


PRESETS: dict[str, ExitPlan] = {
    p.name: within_bounds(p)
    for p in (
        _plan("conservative", [("10", "50"), ("20", "50")], stop="5"),
        _plan("balanced", [("20", "40"), ("50", "40"), ("100", "20")], stop="10"),
        _plan("aggressive", [("50", "30"), ("100", "40"), ("200", "30")], stop="15", trailing="20"),
        _plan("scalping", [("5", "100")], stop="3", hold=900),
        _plan("diamond", [("100", "25"), ("300", "25"), ("500", "50")], stop="25", trailing="30"),
    )
}


def resolve_exit_plan(name: str, custom: dict[str, ExitPlan] | None = None) -> ExitPlan:
    """A user's own plans shadow nothing: preset names are reserved."""
    if name in PRESETS:
        return PRESETS[name]
    if custom and name in custom:
        return custom[name]
    known = sorted(PRESETS) + sorted(custom or {})
    raise UnknownExitStrategy(f"unknown exit strategy {name!r}; known: {', '.join(known)}")
