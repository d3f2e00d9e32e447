"""Exit plans: presets, validation, prices, and resolving a plan by name."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.errors import InvalidValue, UnknownExitStrategy
from domain.exit_plans import PRESETS, ExitPlan, TakeProfitLevel, exit_plan_bounds, resolve_exit_plan, within_bounds


def levels(*pairs: tuple[str, str]) -> tuple[TakeProfitLevel, ...]:
    return tuple(TakeProfitLevel(Decimal(g), Decimal(s)) for g, s in pairs)


def plan(*pairs: tuple[str, str], stop: str = "10", trailing: str | None = None, hold: int | None = None) -> ExitPlan:
    return ExitPlan(
        "custom",
        levels(*pairs),
        Decimal(stop),
        Decimal(trailing) if trailing is not None else None,
        hold,
    )


class TestPresets:
    def test_the_named_presets_exist(self) -> None:
        assert set(PRESETS) == {"conservative", "balanced", "aggressive", "scalping", "diamond"}

    @pytest.mark.parametrize("name", sorted(PRESETS))
    def test_every_preset_is_a_valid_plan(self, name: str) -> None:
        p = PRESETS[name]
        assert p.name == name
        # Rebuilding it through the validating constructor gives the same plan.
        rebuilt = ExitPlan(p.name, p.take_profits, p.stop_loss_percent, p.trailing_stop_percent, p.max_hold_seconds)
        assert rebuilt == p
        gains = [lv.gain_percent for lv in p.take_profits]
        assert gains == sorted(set(gains))
        assert 0 < p.stop_loss_percent < 100
        assert all(
            isinstance(lv.gain_percent, Decimal) and isinstance(lv.sell_percent, Decimal) for lv in p.take_profits
        )

    @pytest.mark.parametrize("name", sorted(PRESETS))
    def test_every_preset_sells_the_whole_position_by_its_last_level(self, name: str) -> None:
        assert sum(lv.sell_percent for lv in PRESETS[name].take_profits) == Decimal(100)

    def test_preset_details(self) -> None:
        assert PRESETS["conservative"].take_profits == levels(("10", "50"), ("20", "50"))
        assert PRESETS["conservative"].stop_loss_percent == Decimal("5")
        assert PRESETS["scalping"].max_hold_seconds == 900
        assert PRESETS["aggressive"].trailing_stop_percent == Decimal("20")
        assert PRESETS["diamond"].trailing_stop_percent == Decimal("30")
        assert PRESETS["balanced"].trailing_stop_percent is None
        assert PRESETS["balanced"].max_hold_seconds is None


class TestTakeProfitLevel:
    def test_strings_become_decimals(self) -> None:
        lv = TakeProfitLevel("12.5", "40")  # type: ignore[arg-type]
        assert lv.gain_percent == Decimal("12.5") and isinstance(lv.gain_percent, Decimal)
        assert lv.sell_percent == Decimal("40") and isinstance(lv.sell_percent, Decimal)

    @pytest.mark.parametrize(("gain", "sell"), [("0", "50"), ("-5", "50"), ("10", "0"), ("10", "-1"), ("10", "100.01")])
    def test_out_of_range_refused(self, gain: str, sell: str) -> None:
        with pytest.raises(InvalidValue):
            TakeProfitLevel(Decimal(gain), Decimal(sell))

    def test_whole_position_in_one_level_allowed(self) -> None:
        assert TakeProfitLevel(Decimal("5"), Decimal("100")).sell_percent == 100

    def test_floats_refused(self) -> None:
        with pytest.raises(InvalidValue):
            TakeProfitLevel(10.0, Decimal("50"))  # type: ignore[arg-type]
        with pytest.raises(InvalidValue):
            TakeProfitLevel(Decimal("10"), 50.0)  # type: ignore[arg-type]


class TestExitPlanValidation:
    def test_shares_up_to_100_are_fine(self) -> None:
        assert len(plan(("10", "60"), ("20", "40")).take_profits) == 2
        assert len(plan(("10", "30")).take_profits) == 1  # the rest is left to stop/trailing/hold

    def test_plan_without_take_profits_is_allowed(self) -> None:
        assert plan().take_profits == ()

    def test_list_of_levels_is_frozen_into_a_tuple(self) -> None:
        p = ExitPlan("x", list(levels(("10", "50"))), Decimal("5"))  # type: ignore[arg-type]
        assert isinstance(p.take_profits, tuple)

    def test_shares_over_100_refused(self) -> None:
        with pytest.raises(InvalidValue, match="100.01%"):
            plan(("10", "50"), ("20", "50.01"))

    @pytest.mark.parametrize(
        "pairs",
        [
            (("20", "50"), ("10", "50")),  # decreasing
            (("10", "50"), ("10", "50")),  # equal
            (("10", "30"), ("30", "30"), ("20", "30")),
        ],
    )
    def test_gains_must_strictly_increase(self, pairs: tuple[tuple[str, str], ...]) -> None:
        with pytest.raises(InvalidValue, match="strictly increase"):
            plan(*pairs)

    @pytest.mark.parametrize("stop", ["0", "100", "-1", "150"])
    def test_stop_loss_out_of_range_refused(self, stop: str) -> None:
        with pytest.raises(InvalidValue, match="stop-loss"):
            plan(("10", "100"), stop=stop)

    @pytest.mark.parametrize("stop", ["0.01", "99.99"])
    def test_stop_loss_just_inside_range_accepted(self, stop: str) -> None:
        assert plan(stop=stop).stop_loss_percent == Decimal(stop)

    def test_stop_loss_float_refused(self) -> None:
        with pytest.raises(InvalidValue):
            ExitPlan("x", (), 5.0)  # type: ignore[arg-type]

    def test_stop_loss_string_becomes_decimal(self) -> None:
        p = ExitPlan("x", (), "5")  # type: ignore[arg-type]
        assert p.stop_loss_percent == Decimal(5) and isinstance(p.stop_loss_percent, Decimal)

    @pytest.mark.parametrize("trailing", ["0", "100", "-3"])
    def test_trailing_stop_out_of_range_refused(self, trailing: str) -> None:
        with pytest.raises(InvalidValue, match="trailing"):
            plan(trailing=trailing)

    @pytest.mark.parametrize("hold", [0, -5, True, "900"])
    def test_max_hold_must_be_positive_int(self, hold: object) -> None:
        with pytest.raises(InvalidValue, match="max hold"):
            plan(hold=hold)  # type: ignore[arg-type]

    @pytest.mark.parametrize("name", ["", "x" * 41])
    def test_name_length(self, name: str) -> None:
        with pytest.raises(InvalidValue, match="name"):
            ExitPlan(name, (), Decimal("5"))

    def test_forty_character_name_accepted(self) -> None:
        assert ExitPlan("x" * 40, (), Decimal("5")).name == "x" * 40


class TestPrices:
    def test_take_profit_and_stop_prices_are_exact(self) -> None:
        p = PRESETS["conservative"]
        entry = Decimal("0.00009512")
        assert p.take_profit_price(entry, 0) == Decimal("0.000104632")
        assert p.take_profit_price(entry, 1) == Decimal("0.000114144")
        assert p.stop_loss_price(entry) == Decimal("0.000090364")


class TestResolve:
    def test_preset_by_name(self) -> None:
        assert resolve_exit_plan("balanced") is PRESETS["balanced"]

    def test_custom_by_name(self) -> None:
        mine = ExitPlan("moonshot", levels(("1000", "100")), Decimal("50"))
        assert resolve_exit_plan("moonshot", {"moonshot": mine}) is mine

    def test_preset_names_are_reserved(self) -> None:
        impostor = ExitPlan("balanced", levels(("1", "100")), Decimal("1"))
        assert resolve_exit_plan("balanced", {"balanced": impostor}) is PRESETS["balanced"]

    def test_unknown_lists_every_known_name(self) -> None:
        mine = ExitPlan("moonshot", (), Decimal("50"))
        with pytest.raises(UnknownExitStrategy) as info:
            resolve_exit_plan("yolo", {"moonshot": mine})
        message = str(info.value)
        assert "'yolo'" in message
        assert message.endswith("known: aggressive, balanced, conservative, diamond, scalping, moonshot")

    def test_unknown_without_custom_lists_presets(self) -> None:
        with pytest.raises(UnknownExitStrategy, match="known: aggressive, balanced, conservative, diamond, scalping$"):
            resolve_exit_plan("yolo")

    def test_lookup_is_exact(self) -> None:
        with pytest.raises(UnknownExitStrategy):
            resolve_exit_plan("Balanced")


class TestBoundsATraderMaySet:
    """What a person may set (issue 12): 1-5 levels, gains 0.5-1000 %, shares 1-100 %, stop-loss
    0.5-95 %, trailing stop 0.5-50 %, hold 1 min-30 days. A plan recorded before keeps loading."""

    @pytest.mark.parametrize("name", sorted(PRESETS))
    def test_every_preset_is_within_the_bounds(self, name: str) -> None:
        assert exit_plan_bounds().unmet(PRESETS[name]) == []

    @pytest.mark.parametrize(
        ("bad", "reason"),
        [
            (plan(*[(str(g), "10") for g in range(10, 80, 10)]), "7 take-profit levels; give 1 to 5"),
            (plan(), "0 take-profit levels; give 1 to 5"),
            (plan(("1001", "100")), "take-profit gain 1001% is outside 0.5-1000%"),
            (plan(("0.05", "100")), "take-profit gain 0.05% is outside 0.5-1000%"),
            (plan(("10", "0.5"), ("20", "50")), "take-profit share 0.5% is outside 1-100%"),
            (plan(("10", "100"), stop="0.4"), "stop-loss 0.4% is outside 0.5-95%"),
            (plan(("10", "100"), stop="96"), "stop-loss 96% is outside 0.5-95%"),
            (plan(("10", "100"), trailing="0.1"), "trailing stop 0.1% is outside 0.5-50%"),
            (plan(("10", "100"), trailing="51"), "trailing stop 51% is outside 0.5-50%"),
            (plan(("10", "100"), hold=59), "max hold time 59 s is outside 60 s (1 min) to 2592000 s (30 days)"),
            (plan(("10", "100"), hold=30 * 86_400 + 1), "max hold time 2592001 s is outside 60 s (1 min) to 2592000 s"),
        ],
    )
    def test_each_bound_is_named(self, bad: ExitPlan, reason: str) -> None:
        with pytest.raises(InvalidValue, match="exit plan 'custom': ") as caught:
            within_bounds(bad)
        assert reason in str(caught.value)

    @pytest.mark.parametrize(
        "fine",
        [
            plan(("0.5", "1")),
            plan(*[(str(g), "20") for g in (1, 2, 3, 4, 1000)], stop="95", trailing="50", hold=30 * 86_400),
            plan(("10", "100"), stop="0.5", trailing="0.5", hold=60),
        ],
    )
    def test_the_edges_are_inside(self, fine: ExitPlan) -> None:
        assert within_bounds(fine) is fine

    def test_every_broken_bound_is_reported_at_once(self) -> None:
        with pytest.raises(InvalidValue) as caught:
            within_bounds(plan(("1001", "0.5"), stop="96"))
        assert str(caught.value).count(";") == 2

    def test_a_plan_out_of_bounds_still_exists_as_a_value(self) -> None:
        # An old event may hold one: it must still load (the bounds guard what a person sets).
        assert len(plan(*[(str(g), "10") for g in range(10, 80, 10)]).take_profits) == 7
