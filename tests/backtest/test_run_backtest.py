"""RunBacktest: exact P&L per exit rule on tiny hand-made paths, equity curve and drawdown, determinism.

Every expected number below is worked out by hand in the comment next to it: buy 100 USDT at the
first price (quantity to 2 places), fee 0.1 % of each fill's value in USDT, cost = spend + buy fee.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from application.use_cases.backtest import (
    END_OF_PATH,
    BacktestRequest,
    RunBacktest,
    max_drawdown,
    simulate_trade,
)
from domain.errors import InvalidValue, UnknownExitStrategy
from domain.exit_plans import PRESETS, ExitPlan, TakeProfitLevel
from tests.backtest.support import LAUNCH, ListSource, recording

D = Decimal
FEE = D("0.001")


def trail_plan() -> ExitPlan:
    return ExitPlan("trail10", (TakeProfitLevel(D(50), D(100)),), D(10), trailing_stop_percent=D(10))


class TestOneTradePerExitRule:
    def test_take_profit_ladder(self) -> None:
        # conservative: +10 % sells 50 %, +20 % sells the rest; stop-loss 5 %.
        rec = recording([(0, "1.00"), (1, "1.05"), (2, "1.10"), (3, "1.15"), (60, "1.20")])
        trade = simulate_trade(PRESETS["conservative"], rec, FEE)
        # bought 100 @ 1.00: fee 0.1, cost 100.1
        assert (trade.quantity, trade.cost) == (D("100.00"), D("100.1"))
        assert [(e.reason, e.level, e.price, e.quantity) for e in trade.exits] == [
            ("take_profit", 0, D("1.10"), D("50.00")),
            ("take_profit", 1, D("1.20"), D("50.00")),
        ]
        # 50 @ 1.10 = 55 - fee 0.055 - half the cost 50.05 = 4.895; 50 @ 1.20 = 60 - 0.06 - 50.05 = 9.89
        assert [e.pnl for e in trade.exits] == [D("4.895"), D("9.89")]
        assert trade.pnl == D("14.785")
        assert trade.fees == D("0.215")  # 0.1 + 0.055 + 0.06
        assert trade.hold == timedelta(seconds=60)

    def test_stop_loss(self) -> None:
        rec = recording([(0, "1.00"), (5, "0.97"), (9, "0.95"), (20, "0.50")])
        trade = simulate_trade(PRESETS["conservative"], rec, FEE)
        # 100 @ 0.95 = 95 - 0.095 - 100.1
        assert [(e.reason, e.price) for e in trade.exits] == [("stop_loss", D("0.95"))]
        assert trade.pnl == D("-5.195")
        assert trade.hold == timedelta(seconds=9)

    def test_trailing_stop(self) -> None:
        # peak 1.30; 10 % below it is 1.17, reached exactly on the fourth tick
        rec = recording([(0, "1.00"), (1, "1.20"), (2, "1.30"), (3, "1.18"), (4, "1.17"), (5, "1.00")])
        trade = simulate_trade(trail_plan(), rec, FEE)
        # 100 @ 1.17 = 117 - 0.117 - 100.1
        assert [(e.reason, e.price) for e in trade.exits] == [("trailing_stop", D("1.17"))]
        assert trade.pnl == D("16.783")

    def test_max_hold(self) -> None:
        # scalping: take-profit +5 %, stop-loss 3 %, hold at most 900 s
        rec = recording([(0, "1.00"), (600, "1.02"), (899, "1.03"), (900, "1.01"), (1200, "1.50")])
        trade = simulate_trade(PRESETS["scalping"], rec, FEE)
        # 100 @ 1.01 = 101 - 0.101 - 100.1
        assert [(e.reason, e.price) for e in trade.exits] == [("max_hold", D("1.01"))]
        assert trade.pnl == D("0.799")
        assert trade.hold == timedelta(seconds=900)

    def test_end_of_path_sells_what_is_left_at_the_last_price(self) -> None:
        rec = recording([(0, "1.00"), (10, "1.02"), (20, "0.99"), (30, "1.03")])
        trade = simulate_trade(PRESETS["conservative"], rec, FEE)
        # 100 @ 1.03 = 103 - 0.103 - 100.1
        assert [(e.reason, e.price, e.quantity) for e in trade.exits] == [(END_OF_PATH, D("1.03"), D("100.00"))]
        assert trade.pnl == D("2.797")

    def test_end_of_path_after_a_partial_take_profit(self) -> None:
        rec = recording([(0, "1.00"), (10, "1.10"), (20, "1.08")])
        trade = simulate_trade(PRESETS["conservative"], rec, FEE)
        # 4.895 from the first level; then 50 @ 1.08 = 54 - 0.054 - 50.05 = 3.896
        assert [(e.reason, e.pnl) for e in trade.exits] == [("take_profit", D("4.895")), (END_OF_PATH, D("3.896"))]
        assert trade.pnl == D("8.791")

    def test_a_tick_past_several_levels_sells_them_all_on_that_tick(self) -> None:
        rec = recording([(0, "1.00"), (1, "1.25")])
        trade = simulate_trade(PRESETS["conservative"], rec, FEE)
        assert [(e.reason, e.level, e.at) for e in trade.exits] == [
            ("take_profit", 0, LAUNCH + timedelta(seconds=1)),
            ("take_profit", 1, LAUNCH + timedelta(seconds=1)),
        ]

    def test_zero_fee_rate_charges_nothing(self) -> None:
        trade = simulate_trade(PRESETS["conservative"], recording([(0, "1.00"), (1, "0.95")]), D(0))
        assert (trade.fees, trade.pnl) == (D(0), D("-5"))

    def test_quantity_is_rounded_down_to_the_recordings_scale(self) -> None:
        # 100 / 3 = 33.333.. -> 33.33 bought for 99.99, fee 0.09999, cost 100.08999
        trade = simulate_trade(PRESETS["conservative"], recording([(0, "3"), (1, "2.85")]), FEE)
        assert (trade.quantity, trade.cost) == (D("33.33"), D("100.08999"))
        # stop-loss: 33.33 @ 2.85 = 94.9905 - 0.0949905 - 100.08999
        assert trade.pnl == D("94.9905") - D("0.0949905") - D("100.08999")


class TestStopLossFirst:
    """One price cannot be both 5 % down and 10 % up, so on a single tick stop-loss competes with the
    other exits that can be due at the same time: the trailing stop and the hold limit."""

    def test_stop_loss_wins_over_max_hold_on_the_same_tick(self) -> None:
        rec = recording([(0, "1.00"), (600, "1.01"), (900, "0.96")])
        trade = simulate_trade(PRESETS["scalping"], rec, FEE)  # -4 % at exactly 900 s: both are due
        assert [e.reason for e in trade.exits] == ["stop_loss"]

    def test_stop_loss_wins_over_trailing_stop_on_the_same_tick(self) -> None:
        rec = recording([(0, "1.00"), (1, "1.05"), (2, "0.85")])  # 19 % below the peak and 15 % below entry
        trade = simulate_trade(trail_plan(), rec, FEE)
        assert [e.reason for e in trade.exits] == ["stop_loss"]

    def test_stop_loss_after_a_take_profit_level_sells_the_rest(self) -> None:
        rec = recording([(0, "1.00"), (1, "1.10"), (2, "0.95")])
        trade = simulate_trade(PRESETS["conservative"], rec, FEE)
        # 4.895; then 50 @ 0.95 = 47.5 - 0.0475 - 50.05 = -2.5975
        assert [(e.reason, e.pnl) for e in trade.exits] == [("take_profit", D("4.895")), ("stop_loss", D("-2.5975"))]


class TestDrawdown:
    def test_known_curve(self) -> None:
        # equity from 100: 110, 95, 120, 108, 112 -> worst fall 110 -> 95 = 15, i.e. 15/110 = 13.63..%
        amount, percent = max_drawdown([D(10), D(-5), D(20), D(8), D(12)], D(100))
        assert amount == D(15)
        assert percent == D(15) * 100 / D(110)

    def test_worst_amount_and_worst_percent_can_come_from_different_peaks(self) -> None:
        # from 10: 20 -> 10 is -10 (50 %); 110 -> 95 is -15 (13.6 %)
        amount, percent = max_drawdown([D(10), D(0), D(100), D(85)], D(10))
        assert (amount, percent) == (D(15), D(50))

    def test_a_first_loss_is_a_drawdown_from_the_starting_capital(self) -> None:
        assert max_drawdown([D(-4), D(-6), D(3)], D(200)) == (D(6), D(3))

    def test_a_curve_that_only_rises_has_none(self) -> None:
        assert max_drawdown([D(1), D(2), D(2), D(5)], D(50)) == (D(0), D(0))


class TestRunBacktest:
    def three_listings(self) -> ListSource:
        win = recording([(0, "1.00"), (10, "1.10"), (30, "1.20")], symbol="WINUSDT")  # +14.785 at 10:00:30
        loss = recording([(0, "1.00"), (5, "0.95")], symbol="LOSSUSDT", launch_at=LAUNCH + timedelta(hours=1))
        flat = recording([(0, "1.00"), (100, "1.03")], symbol="FLATUSDT", launch_at=LAUNCH + timedelta(hours=2))
        return ListSource(flat, loss, win)  # out of order on purpose

    def test_totals_hit_rate_hold_curve_and_drawdown(self) -> None:
        report = RunBacktest(self.three_listings())(BacktestRequest(["conservative"], fee_rate=FEE))
        (result,) = report.strategies
        assert [t.symbol for t in result.trades] == ["WINUSDT", "LOSSUSDT", "FLATUSDT"]
        # win: +14.785 (same path as the ladder test), loss: -5.195, flat: +2.797 at the end
        assert [t.pnl for t in result.trades] == [D("14.785"), D("-5.195"), D("2.797")]
        assert result.total_pnl == D("12.387")
        assert result.hit_rate == D(2) / D(3)
        assert result.average_hold == (timedelta(seconds=30) + timedelta(seconds=5) + timedelta(seconds=100)) / 3
        assert [(p.at - LAUNCH, p.pnl) for p in result.equity_curve] == [
            (timedelta(0), D(0)),
            (timedelta(seconds=30), D("14.785")),
            (timedelta(hours=1, seconds=5), D("9.590")),
            (timedelta(hours=2, seconds=100), D("12.387")),
        ]
        # capital defaults to the quote amounts, 300: peak 314.785, trough 309.59
        assert report.starting_capital == D(300)
        assert result.max_drawdown == D("5.195")
        assert result.max_drawdown_percent == D("5.195") * 100 / D("314.785")

    def test_curve_follows_closing_time_when_trades_overlap(self) -> None:
        long = recording([(0, "1.00"), (600, "1.03")], symbol="LONGUSDT")  # closes at the end, 10:10
        short = recording([(0, "1.00"), (60, "0.95")], symbol="SHORTUSDT", launch_at=LAUNCH + timedelta(seconds=1))
        (result,) = RunBacktest(ListSource(long, short))(BacktestRequest(["conservative"], fee_rate=FEE)).strategies
        assert [p.pnl for p in result.equity_curve] == [D(0), D("-5.195"), D("-2.398")]

    def test_every_preset_then_every_custom_plan_by_default(self) -> None:
        custom = {"mine": trail_plan()}
        report = RunBacktest(self.three_listings())(BacktestRequest(custom_plans=custom, fee_rate=FEE))
        assert [s.name for s in report.strategies] == [*PRESETS, "trail10"]
        assert all(len(s.trades) == 3 for s in report.strategies)

    def test_chosen_strategies_in_the_order_given(self) -> None:
        report = RunBacktest(self.three_listings())(BacktestRequest(["scalping", "balanced", "scalping"]))
        assert [s.name for s in report.strategies] == ["scalping", "balanced"]

    def test_unknown_strategy_is_refused(self) -> None:
        with pytest.raises(UnknownExitStrategy, match="nope"):
            RunBacktest(self.three_listings())(BacktestRequest(["nope"]))

    @pytest.mark.parametrize("rate", [D("-0.001"), D("0.1"), D("1")])
    def test_fee_rate_out_of_range_is_refused(self, rate: Decimal) -> None:
        with pytest.raises(InvalidValue, match="fee rate"):
            RunBacktest(self.three_listings())(BacktestRequest(fee_rate=rate))

    def test_explicit_starting_capital(self) -> None:
        report = RunBacktest(self.three_listings())(
            BacktestRequest(["conservative"], fee_rate=FEE, starting_capital=D(50))
        )
        # peak 64.785 -> 59.59
        assert report.strategies[0].max_drawdown_percent == D("5.195") * 100 / D("64.785")

    def test_no_recordings_no_trades(self) -> None:
        (result,) = RunBacktest(ListSource())(BacktestRequest(["balanced"])).strategies
        assert (result.trades, result.hit_rate, result.average_hold, result.total_pnl) == ((), None, None, D(0))
        assert result.equity_curve == ()

    def test_identical_on_repeated_runs(self) -> None:
        source = self.three_listings()
        first = RunBacktest(source)(BacktestRequest(fee_rate=FEE))
        second = RunBacktest(source)(BacktestRequest(fee_rate=FEE))
        assert first == second
        assert source.reads == 2
