"""Specifications: composition with &, |, ~ and the reasons `unmet` gives."""

from __future__ import annotations

from datetime import UTC, timedelta, timezone
from decimal import Decimal

import pytest

from domain.specifications import (
    MAX_SCHEDULE_AHEAD,
    READY_STATE_PATTERN,
    LaunchTiming,
    PricePoint,
    Rule,
    Specification,
    schedulable_launch,
    stop_loss_hit,
    take_profit_reached,
    within_advance_window,
)
from domain.values import SymbolState
from tests.domain.support import T0

positive: Specification[int] = Rule("positive", lambda n: n > 0, lambda n: f"{n} is not positive")
even: Specification[int] = Rule("even", lambda n: n % 2 == 0, lambda n: f"{n} is not even")
small: Specification[int] = Rule("small", lambda n: abs(n) < 10, lambda n: f"{n} is not small")


class TestRule:
    def test_satisfied_rule_has_no_reasons(self) -> None:
        assert positive.is_satisfied_by(3)
        assert positive.unmet(3) == []

    def test_broken_rule_explains_itself(self) -> None:
        assert not positive.is_satisfied_by(-3)
        assert positive.unmet(-3) == ["-3 is not positive"]

    def test_repr_names_the_rule(self) -> None:
        assert repr(positive) == "Rule(positive)"

    def test_base_specification_must_be_implemented(self) -> None:
        with pytest.raises(NotImplementedError):
            Specification().unmet(1)


class TestAnd:
    @pytest.mark.parametrize(
        ("n", "expected"), [(4, True), (3, False), (-4, False), (-3, False)]
    )
    def test_truth_table(self, n: int, expected: bool) -> None:
        assert (positive & even).is_satisfied_by(n) is expected

    def test_one_broken_side_gives_only_its_reason(self) -> None:
        assert (positive & even).unmet(3) == ["3 is not even"]
        assert (positive & even).unmet(-4) == ["-4 is not positive"]

    def test_both_broken_gives_every_reason_left_first(self) -> None:
        assert (positive & even).unmet(-3) == ["-3 is not positive", "-3 is not even"]
        assert (even & positive).unmet(-3) == ["-3 is not even", "-3 is not positive"]

    def test_chains_collect_all_reasons(self) -> None:
        assert (positive & even & small).unmet(-13) == ["-13 is not positive", "-13 is not even", "-13 is not small"]


class TestOr:
    @pytest.mark.parametrize(
        ("n", "expected"), [(4, True), (3, True), (-4, True), (-3, False)]
    )
    def test_truth_table(self, n: int, expected: bool) -> None:
        assert (positive | even).is_satisfied_by(n) is expected

    def test_one_satisfied_side_means_no_reasons(self) -> None:
        assert (positive | even).unmet(3) == []
        assert (positive | even).unmet(-4) == []

    def test_both_broken_gives_both_reasons(self) -> None:
        assert (positive | even).unmet(-3) == ["-3 is not positive", "-3 is not even"]


class TestNot:
    def test_inverts(self) -> None:
        assert (~positive).is_satisfied_by(-1)
        assert not (~positive).is_satisfied_by(1)

    def test_reason_says_what_held_unexpectedly(self) -> None:
        reasons = (~positive).unmet(5)
        assert len(reasons) == 1
        assert "not expected" in reasons[0]
        assert "positive" in reasons[0]
        assert (~positive).unmet(-5) == []

    @pytest.mark.parametrize("n", [-3, -2, 0, 1, 2, 11])
    def test_double_negation_is_the_rule(self, n: int) -> None:
        assert (~~even).is_satisfied_by(n) is even.is_satisfied_by(n)

    @pytest.mark.parametrize("n", [-13, -4, -3, 0, 3, 4, 12, 13])
    def test_de_morgan(self, n: int) -> None:
        assert (~(positive & even)).is_satisfied_by(n) is (~positive | ~even).is_satisfied_by(n)
        assert (~(positive | even)).is_satisfied_by(n) is (~positive & ~even).is_satisfied_by(n)

    def test_mixed_composition(self) -> None:
        spec = (positive | even) & ~small
        assert spec.is_satisfied_by(11)  # positive, not small
        assert spec.is_satisfied_by(-12)  # even, not small
        assert not spec.is_satisfied_by(3)  # small
        assert not spec.is_satisfied_by(-13)  # neither positive nor even
        assert spec.unmet(-13) == ["-13 is not positive", "-13 is not even"]


class TestReadyStatePattern:
    def test_only_2_2_4_is_ready(self) -> None:
        satisfied = [
            (sts, st, tt)
            for sts in range(5)
            for st in range(5)
            for tt in range(6)
            if READY_STATE_PATTERN.is_satisfied_by(SymbolState(sts, st, tt))
        ]
        assert satisfied == [(2, 2, 4)]

    def test_open_time_does_not_matter(self) -> None:
        assert READY_STATE_PATTERN.is_satisfied_by(SymbolState(2, 2, 4, open_time_ms=1))

    def test_reason_names_the_codes(self) -> None:
        assert READY_STATE_PATTERN.unmet(SymbolState(2, 2, 3)) == [
            "state (sts=2, st=2, tt=3) is not the ready-state pattern (2, 2, 4)"
        ]


LEAD = timedelta(hours=3, minutes=30)


class TestWithinAdvanceWindow:
    @pytest.mark.parametrize(
        ("until_launch", "expected"),
        [
            (LEAD, True),  # exactly at the lead: inside
            (LEAD + timedelta(microseconds=1), False),  # just beyond
            (LEAD - timedelta(seconds=1), True),
            (timedelta(minutes=1), True),
            (timedelta(0), True),  # launching now
            (-timedelta(microseconds=1), False),  # just past launch
            (-timedelta(hours=1), False),
            (timedelta(days=2), False),
        ],
    )
    def test_boundaries(self, until_launch: timedelta, expected: bool) -> None:
        timing = LaunchTiming(launch_at=T0 + until_launch, now=T0)
        assert within_advance_window(LEAD).is_satisfied_by(timing) is expected

    def test_reason_mentions_launch_and_lead(self) -> None:
        timing = LaunchTiming(launch_at=T0 + timedelta(hours=5), now=T0)
        (reason,) = within_advance_window(LEAD).unmet(timing)
        assert "3:30:00" in reason
        assert (T0 + timedelta(hours=5)).isoformat() in reason

    def test_time_zones_are_compared_as_instants(self) -> None:
        # 15:00 at +02:00 is 13:00 UTC: one hour after T0 (12:00 UTC).
        launch = T0.astimezone(timezone(timedelta(hours=2))) + timedelta(hours=1)
        assert within_advance_window(timedelta(hours=1)).is_satisfied_by(LaunchTiming(launch, T0))
        assert not within_advance_window(timedelta(minutes=59)).is_satisfied_by(LaunchTiming(launch, T0))
        assert launch.tzinfo != UTC


class TestPriceRules:
    def test_take_profit_at_and_above_the_gain(self) -> None:
        rule = take_profit_reached(Decimal("10"))
        entry = Decimal("0.00009512")
        assert rule.is_satisfied_by(PricePoint(entry, Decimal("0.000104632")))  # exactly +10 %
        assert rule.is_satisfied_by(PricePoint(entry, Decimal("0.00011")))
        assert not rule.is_satisfied_by(PricePoint(entry, Decimal("0.000104631")))
        assert rule.unmet(PricePoint(entry, Decimal("0.0001"))) == [
            "price 0.0001 below take-profit +10% of 0.00009512"
        ]

    def test_stop_loss_at_and_below_the_loss(self) -> None:
        rule = stop_loss_hit(Decimal("5"))
        entry = Decimal("100")
        assert rule.is_satisfied_by(PricePoint(entry, Decimal("95")))  # exactly -5 %
        assert rule.is_satisfied_by(PricePoint(entry, Decimal("1")))
        assert not rule.is_satisfied_by(PricePoint(entry, Decimal("95.00000001")))
        assert rule.unmet(PricePoint(entry, Decimal("99"))) == ["price 99 above stop-loss -5% of 100"]


class TestSchedulingHorizon:
    """A snipe is scheduled by hand at most 30 days before its launch (a 2126 typo is refused)."""

    @pytest.mark.parametrize(
        ("until_launch", "expected"),
        [
            (MAX_SCHEDULE_AHEAD, True),
            (MAX_SCHEDULE_AHEAD + timedelta(microseconds=1), False),
            (timedelta(days=36500), False),
            (timedelta(minutes=5), True),
        ],
    )
    def test_boundaries(self, until_launch: timedelta, expected: bool) -> None:
        assert schedulable_launch().is_satisfied_by(LaunchTiming(T0 + until_launch, T0)) is expected

    def test_reason_names_the_launch_and_the_bound(self) -> None:
        (reason,) = schedulable_launch().unmet(LaunchTiming(T0 + timedelta(days=36500), T0))
        assert reason.startswith(f"launch time {(T0 + timedelta(days=36500)).isoformat()} is more than 30 days ahead")
