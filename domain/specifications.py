"""Specifications: business rules as small composable predicates (`&`, `|`, `~`).

`unmet(candidate)` says in words which rules a candidate fails, so a refusal can be recorded
with its reasons.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Generic, TypeVar

from domain.values import SymbolState

T = TypeVar("T")


class Specification(Generic[T]):
    def is_satisfied_by(self, candidate: T) -> bool:
        return not self.unmet(candidate)

    def unmet(self, candidate: T) -> list[str]:
        raise NotImplementedError

    def __and__(self, other: Specification[T]) -> Specification[T]:
        return _And(self, other)

    def __or__(self, other: Specification[T]) -> Specification[T]:
        return _Or(self, other)

    def __invert__(self) -> Specification[T]:
        return _Not(self)


class Rule(Specification[T]):
    """A leaf rule: a predicate and a sentence that says what failed."""

    def __init__(self, name: str, predicate: Callable[[T], bool], explain: Callable[[T], str]) -> None:
        self.name = name
        self._predicate = predicate
        self._explain = explain

    def unmet(self, candidate: T) -> list[str]:
        return [] if self._predicate(candidate) else [self._explain(candidate)]

    def __repr__(self) -> str:
        return f"Rule({self.name})"


class _And(Specification[T]):
    def __init__(self, left: Specification[T], right: Specification[T]) -> None:
        self.left, self.right = left, right

    def unmet(self, candidate: T) -> list[str]:
        return self.left.unmet(candidate) + self.right.unmet(candidate)


class _Or(Specification[T]):
    def __init__(self, left: Specification[T], right: Specification[T]) -> None:
        self.left, self.right = left, right

    def unmet(self, candidate: T) -> list[str]:
        a = self.left.unmet(candidate)
        if not a:
            return []
        b = self.right.unmet(candidate)
        return [] if not b else a + b


class _Not(Specification[T]):
    def __init__(self, inner: Specification[T]) -> None:
        self.inner = inner

    def unmet(self, candidate: T) -> list[str]:
        return [f"not expected: {self.inner!r} holds"] if self.inner.is_satisfied_by(candidate) else []


# --- listing rules --------------------------------------------------------------------

READY_STATE_PATTERN: Specification[SymbolState] = Rule(
    "ready-state pattern",
    lambda s: s.sts == 2 and s.st == 2 and s.tt == 4,
    lambda s: f"state (sts={s.sts}, st={s.st}, tt={s.tt}) is not the ready-state pattern (2, 2, 4)",
)


@dataclass(frozen=True, slots=True)
class LaunchTiming:
    launch_at: datetime
    now: datetime


def within_advance_window(lead: timedelta) -> Specification[LaunchTiming]:
    """Launch is still ahead, and no further ahead than the lead window."""
    return Rule(
        "advance-detection window",
        lambda t: timedelta(0) <= t.launch_at - t.now <= lead,
        lambda t: f"launch at {t.launch_at.isoformat()} is not within {lead} of {t.now.isoformat()}",
    )


# How far ahead a person may schedule a snipe by hand. MEXC announces listings days ahead (rarely
# more than two weeks); a launch further out than this is a typo (2126 for 2026), and a target
# that waits months holds a scheduled job and a risk judgement made on a book long gone.
MAX_SCHEDULE_AHEAD = timedelta(days=30)


def schedulable_launch(horizon: timedelta = MAX_SCHEDULE_AHEAD) -> Specification[LaunchTiming]:
    """Launch no further ahead than `horizon` (whether it is still ahead is the snipe window's question)."""
    return Rule(
        "scheduling horizon",
        lambda t: t.launch_at - t.now <= horizon,
        lambda t: f"launch time {t.launch_at.isoformat()} is more than {horizon.days} days ahead; "
                  f"a snipe is scheduled at most {horizon.days} days before its launch",
    )


# --- exit rules -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PricePoint:
    entry: Decimal
    price: Decimal


def take_profit_reached(gain_percent: Decimal) -> Specification[PricePoint]:
    return Rule(
        f"take-profit +{gain_percent}%",
        lambda p: p.price >= p.entry * (1 + gain_percent / 100),
        lambda p: f"price {p.price} below take-profit +{gain_percent}% of {p.entry}",
    )


def stop_loss_hit(loss_percent: Decimal) -> Specification[PricePoint]:
    return Rule(
        f"stop-loss -{loss_percent}%",
        lambda p: p.price <= p.entry * (1 - loss_percent / 100),
        lambda p: f"price {p.price} above stop-loss -{loss_percent}% of {p.entry}",
    )
