"""Position: exits sell what can be sold (rounded down to the step), what cannot is written off
as dust; under an automatic emergency stop only protective exits are decided."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from domain.errors import InvalidTransition, InvalidValue
from domain.events import DustWrittenOff, PositionClosed, StopLossHit
from domain.exit_plans import ExitPlan, TakeProfitLevel
from domain.position import ExitDecision, ExitReason, Position, PositionStatus
from domain.values import Symbol
from tests.domain.support import T0, D, cause, type_names

SYMBOL = Symbol("NEW", "USDT")
PLAN = ExitPlan("test", (TakeProfitLevel(D("20"), D("50")), TakeProfitLevel(D("50"), D("50"))), D("10"),
                trailing_stop_percent=D("5"), max_hold_seconds=60)


def bought_with_fee_in_the_coin() -> Position:
    """33.33 NEW bought at 0.3 for 9.999 USDT; MEXC took 0.05 % of it in NEW: 33.313335 held."""
    return Position.open("t-fee", "u1", SYMBOL, D("0.3"), D("33.33"), D("9.999"), D("0.016665"), "NEW", 2, PLAN,
                         cause(0))


def fill(pos: Position, decision: ExitDecision, price: Decimal, seconds: float, step: int | None = 2) -> None:
    """`step`: the pair's step as the exchange states it (None: not known)."""
    pos.submit_exit(decision, cause(seconds))
    pos.record_exit_fill(price, decision.quantity, Decimal(0), cause(seconds), quantity_scale=step)


class TestSellingWhatCanBeSold:
    def test_a_base_fee_leaves_a_holding_finer_than_the_step(self) -> None:
        pos = bought_with_fee_in_the_coin()
        assert pos.remaining == D("33.313335") and pos.remaining_cost == D("9.999")

    def test_an_all_out_exit_is_rounded_down_to_the_step_never_up(self) -> None:
        decision = bought_with_fee_in_the_coin().decide_exit(D("0.2"), T0)
        assert decision is not None and decision.reason is ExitReason.STOP_LOSS
        assert decision.quantity == D("33.31")

    def test_what_is_left_below_one_step_after_the_sell_is_written_off_as_dust(self) -> None:
        pos = bought_with_fee_in_the_coin()
        decision = pos.decide_exit(D("0.2"), T0)
        assert decision is not None
        fill(pos, decision, D("0.2"), 1)

        assert type_names(pos.pending)[-3:] == ["StopLossHit", "DustWrittenOff", "PositionClosed"]
        hit, dust, closed = (r.event for r in pos.pending[-3:])
        assert isinstance(hit, StopLossHit) and hit.quantity == D("33.31")
        assert isinstance(dust, DustWrittenOff)
        assert (dust.quantity, dust.price, dust.proceeds, dust.client_order_id) == (D("0.003335"), 0, 0, "")
        # Its share of the cost is booked as a loss: the whole cost is released, nothing else is.
        assert hit.cost_released + dust.cost_released == D("9.999")
        assert dust.realised_pnl == -dust.cost_released < 0
        assert "dust" in dust.reason
        assert isinstance(closed, PositionClosed)
        assert (pos.status, pos.remaining, pos.remaining_cost) == (PositionStatus.CLOSED, 0, 0)
        assert pos.realised_pnl == closed.realised_pnl == D("33.31") * D("0.2") - D("9.999")

    def test_the_fold_gives_the_same_position(self) -> None:
        pos = bought_with_fee_in_the_coin()
        decision = pos.decide_exit(D("0.2"), T0)
        assert decision is not None
        fill(pos, decision, D("0.2"), 1)
        again = Position.rehydrate(pos.stream_id, pos.pending)
        assert (again.status, again.remaining, again.realised_pnl) == (pos.status, pos.remaining, pos.realised_pnl)

    def test_a_remainder_of_at_least_one_step_stays_open(self) -> None:
        pos = bought_with_fee_in_the_coin()
        fill(pos, ExitDecision(ExitReason.TAKE_PROFIT, 0, D("33.30"), D("0.36")), D("0.36"), 1)
        assert pos.status is PositionStatus.PARTIALLY_EXITED and pos.remaining == D("0.013335")
        assert "DustWrittenOff" not in type_names(pos.pending)

    @pytest.mark.parametrize(("available", "sellable"), [
        ("100", "33.31"), ("33.313335", "33.31"), ("20.129", "20.12"), ("0.009", "0"), ("0", "0"),
    ])
    def test_sellable_within_what_the_account_holds(self, available: str, sellable: str) -> None:
        assert bought_with_fee_in_the_coin().sellable_within(D(available)) == D(sellable)


class TestWriteOff:
    def test_writing_off_closes_the_position_and_books_the_cost_as_a_loss(self) -> None:
        pos = bought_with_fee_in_the_coin()
        pos.write_off("  not in the account ", cause(3))
        assert type_names(pos.pending)[-2:] == ["DustWrittenOff", "PositionClosed"]
        dust = pos.pending[-2].event
        assert isinstance(dust, DustWrittenOff) and dust.reason == "not in the account"
        assert (dust.quantity, dust.cost_released, dust.realised_pnl) == (D("33.313335"), D("9.999"), D("-9.999"))
        assert pos.status is PositionStatus.CLOSED

    def test_not_while_an_exit_is_pending_nor_once_closed_nor_without_a_reason(self) -> None:
        pos = bought_with_fee_in_the_coin()
        with pytest.raises(InvalidValue):
            pos.write_off(" ", cause(1))
        pos.submit_exit(ExitDecision(ExitReason.STOP_LOSS, None, D("33.31"), D("0.2")), cause(1))
        with pytest.raises(InvalidTransition):
            pos.write_off("dust", cause(2))
        pos.record_exit_fill(D("0.2"), D("33.31"), Decimal(0), cause(2), quantity_scale=2)
        assert pos.status is PositionStatus.CLOSED
        with pytest.raises(InvalidTransition):
            pos.write_off("dust", cause(3))


class TestProtectiveOnly:
    """Under an automatic emergency stop only stop-loss and trailing stop are decided."""

    def test_a_take_profit_waits(self) -> None:
        pos = bought_with_fee_in_the_coin()
        assert pos.decide_exit(D("0.36"), T0) is not None  # +20 %: take-profit
        assert pos.decide_exit(D("0.36"), T0, protective_only=True) is None

    def test_max_hold_waits(self) -> None:
        pos = bought_with_fee_in_the_coin()
        late = T0 + timedelta(seconds=61)
        decision = pos.decide_exit(D("0.3"), late)
        assert decision is not None and decision.reason is ExitReason.MAX_HOLD
        assert pos.decide_exit(D("0.3"), late, protective_only=True) is None

    def test_the_stop_loss_still_sells(self) -> None:
        decision = bought_with_fee_in_the_coin().decide_exit(D("0.2"), T0, protective_only=True)
        assert decision is not None and decision.reason is ExitReason.STOP_LOSS

    def test_the_trailing_stop_still_sells(self) -> None:
        pos = bought_with_fee_in_the_coin()
        pos.observe(D("0.34"), cause(1))
        decision = pos.decide_exit(D("0.32"), T0, protective_only=True)  # 5.9 % below the 0.34 peak
        assert decision is not None and decision.reason is ExitReason.TRAILING_STOP

    def test_which_reasons_are_protective(self) -> None:
        assert {r for r in ExitReason if r.protective} == {
            ExitReason.STOP_LOSS, ExitReason.TRAILING_STOP, ExitReason.EMERGENCY}
