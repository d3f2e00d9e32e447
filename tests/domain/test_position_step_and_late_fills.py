"""Position: nothing is written off on a step the exchange did not state (the step recorded at
the fill may be a guess), and an exit recorded failed that filled after all is recorded as the
fill it was."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.errors import InvalidTransition, InvalidValue
from domain.events import DustWrittenOff, StopLossHit, TakeProfitHit
from domain.exit_plans import PRESETS, ExitPlan, TakeProfitLevel
from domain.position import ExitDecision, ExitReason, Position, PositionStatus
from domain.values import Symbol
from tests.domain.support import T0, D, cause, type_names

NEW = Symbol("NEW", "USDT")


def guessed_step() -> Position:
    """2.0000 NEW bought at 50 for 100 USDT, 0.001 NEW taken as the fee: 1.999 held. The pair was
    missing from the symbol list at fill time, so the step was guessed from "2.0000": 0 decimals
    (the real one is 4)."""
    return Position.open("t-1", "u1", NEW, D("50"), D("2.0000"), D("100"), D("0.001"), "NEW", 0, PRESETS["balanced"],
                         cause(0))


class TestAGuessedStep:
    def test_the_stop_loss_sells_what_the_guessed_step_allows_and_writes_nothing_off(self) -> None:
        # The audit's proof: it sold 1 and wrote 0.999 NEW (~40 USDT) off as dust.
        pos = guessed_step()
        decision = pos.decide_exit(D("40"), T0)
        assert decision is not None and decision.quantity == D("1")
        pos.submit_exit(decision, cause(1))
        pos.record_exit_fill(D("40"), decision.quantity, D("0"), cause(1))
        assert "DustWrittenOff" not in type_names(pos.pending)
        assert (pos.status, pos.remaining) == (PositionStatus.PARTIALLY_EXITED, D("0.999"))

    def test_with_the_exchange_s_step_the_stop_loss_sells_it_all(self) -> None:
        pos = guessed_step()
        decision = pos.decide_exit(D("40"), T0, quantity_scale=4)
        assert decision is not None and decision.quantity == D("1.999")
        pos.submit_exit(decision, cause(1))
        pos.record_exit_fill(D("40"), decision.quantity, D("0"), cause(1), quantity_scale=4)
        assert type_names(pos.pending)[-2:] == ["StopLossHit", "PositionClosed"]

    def test_below_the_exchange_s_step_what_is_left_is_dust(self) -> None:
        pos = guessed_step()
        pos.submit_exit(ExitDecision(ExitReason.STOP_LOSS, None, D("1.9989"), D("40")), cause(1))
        pos.record_exit_fill(D("40"), D("1.9989"), D("0"), cause(1), quantity_scale=3)
        dust = pos.pending[-2].event
        assert isinstance(dust, DustWrittenOff) and dust.quantity == D("0.0001") and "step of 3" in dust.reason
        assert pos.status is PositionStatus.CLOSED

    def test_take_profit_levels_round_to_the_step_given(self) -> None:
        plan = ExitPlan("one", (TakeProfitLevel(D("10"), D("50")),), D("50"))
        pos = Position.open("t-1", "u1", NEW, D("50"), D("2.0000"), D("100"), D("0.001"), "NEW", 0, plan, cause(0))
        assert (d := pos.decide_exit(D("56"), T0)) is not None and d.quantity == D("1")
        assert (d := pos.decide_exit(D("56"), T0, quantity_scale=4)) is not None and d.quantity == D("0.9995")
        assert pos.sellable_within(D("1.5")) == D("1") and pos.sellable_within(D("1.5"), 4) == D("1.5")
        assert pos.below_one_step(0) is False and pos.below_one_step(4) is False

    def test_whether_the_buy_fee_was_learnt(self) -> None:
        assert guessed_step().entry_fee_known is True
        unknown = Position.open(
            "t-2", "u1", NEW, D("50"), D("2"), D("100"), D("0"), "", 4, PRESETS["balanced"], cause(0)
        )
        assert unknown.entry_fee_known is False


def sold_unseen() -> tuple[Position, str]:
    """A stop-loss recorded failed (its reply lost, not found past the grace) that filled."""
    pos = Position.open("t-1", "u1", NEW, D("0.5"), D("20"), D("10"), D("0.005"), "USDT", 2, PRESETS["balanced"],
                        cause(0))
    coid = pos.submit_exit(ExitDecision(ExitReason.STOP_LOSS, None, D("20"), D("0.44")), cause(1)).value
    pos.record_exit_failure("the exit order is not on the exchange", cause(12))
    return pos, coid


class TestALateFill:
    def test_is_recorded_as_the_fill_it_was(self) -> None:
        pos, coid = sold_unseen()
        pos.record_late_exit_fill(coid, D("0.44"), D("20"), D("0.0044"), cause(20))
        hit = pos.pending[-2].event
        assert isinstance(hit, StopLossHit) and (hit.client_order_id, hit.quantity, hit.price) == (
            coid, D("20"), D("0.44")
        )
        assert hit.realised_pnl == D("8.8") - D("0.0044") - D("10.005")
        assert pos.status is PositionStatus.CLOSED and pos.failed_exits == {}
        again = Position.rehydrate(pos.stream_id, pos.pending)
        assert (again.status, again.realised_pnl, again.failed_exits) == (pos.status, pos.realised_pnl, {})

    def test_leaves_a_pending_exit_pending(self) -> None:
        pos, first = sold_unseen()
        second = pos.submit_exit(ExitDecision(ExitReason.STOP_LOSS, None, D("10"), D("0.44")), cause(13)).value
        pos.record_late_exit_fill(first, D("0.44"), D("10"), D("0"), cause(14))
        assert pos.pending_exit is not None and pos.pending_exit.client_order_id == second
        assert pos.remaining == D("10")

    def test_a_take_profit_level_found_late_counts_as_hit(self) -> None:
        pos = Position.open(
            "t-1", "u1", NEW, D("0.5"), D("20"), D("10"), D("0"), "USDT", 2, PRESETS["balanced"], cause(0)
        )
        coid = pos.submit_exit(ExitDecision(ExitReason.TAKE_PROFIT, 0, D("8"), D("0.6")), cause(1)).value
        pos.record_exit_failure("refused", cause(2))
        pos.record_late_exit_fill(coid, D("0.6"), D("8"), D("0"), cause(3))
        assert isinstance(pos.pending[-1].event, TakeProfitHit) and 0 in pos.levels_hit

    def test_only_of_an_exit_recorded_failed_and_only_what_is_held(self) -> None:
        pos, coid = sold_unseen()
        with pytest.raises(InvalidTransition):
            pos.record_late_exit_fill("ext-unknown", D("0.44"), D("1"), D("0"), cause(20))
        with pytest.raises(InvalidValue):
            pos.record_late_exit_fill(coid, D("0.44"), D("21"), D("0"), cause(20))

    def test_a_position_remembers_its_last_eight_failed_exits(self) -> None:
        pos, first = sold_unseen()
        for n in range(8):
            pos.submit_exit(ExitDecision(ExitReason.STOP_LOSS, None, D("20"), D("0.44")), cause(20 + n))
            pos.record_exit_failure("refused", cause(20 + n))
        assert len(pos.failed_exits) == 8 and first not in pos.failed_exits
        assert Position.rehydrate(pos.stream_id, pos.pending).failed_exits == pos.failed_exits


def test_an_exit_fill_without_the_step_leaves_a_sub_step_remainder_open() -> None:
    pos = Position.open("t-1", "u1", NEW, D("0.3"), D("33.33"), D("9.999"), D("0.016665"), "NEW", 2,
                        PRESETS["balanced"], cause(0))
    pos.submit_exit(ExitDecision(ExitReason.STOP_LOSS, None, D("33.31"), D("0.2")), cause(1))
    pos.record_exit_fill(D("0.2"), D("33.31"), Decimal(0), cause(1))
    assert (pos.status, pos.remaining) == (PositionStatus.PARTIALLY_EXITED, D("0.003335"))
