"""A person's close by hand: everything held, at market, recorded with who asked."""

from __future__ import annotations

import pytest

from domain.errors import InvalidTransition, InvalidValue
from domain.events import ExitOrderSubmitted, ManualExitFilled
from domain.exit_plans import PRESETS
from domain.position import ExitReason, PositionStatus
from tests.domain.support import D, cause
from tests.domain.test_position import open_position, simple


def test_a_manual_exit_sells_everything_held_rounded_down_to_the_step() -> None:
    pos = open_position()  # 1051303.61 held, scale 2
    decision = pos.decide_manual_exit(D("0.0001"), "alice", quantity_scale=0)
    assert (decision.reason, decision.level, decision.quantity, decision.requested_by) == (
        ExitReason.MANUAL, None, D("1051303"), "alice")


def test_it_is_recorded_as_the_persons_exit_and_closes_the_position() -> None:
    pos = simple(PRESETS["balanced"])
    pos.submit_exit(pos.decide_manual_exit(D("1.2"), "alice"), cause(1))
    pos.record_exit_fill(D("1.2"), D("100"), D("0.06"), cause(2))

    submitted = [r.event for r in pos.pending if isinstance(r.event, ExitOrderSubmitted)][0]
    filled = [r.event for r in pos.pending if isinstance(r.event, ManualExitFilled)][0]
    assert (submitted.reason, submitted.requested_by) == ("manual", "alice")
    assert filled.requested_by == "alice" and filled.realised_pnl == D("19.94")
    assert pos.status is PositionStatus.CLOSED


def test_refused_when_closed_or_while_an_exit_is_in_flight_or_without_a_person() -> None:
    pos = simple(PRESETS["balanced"])
    with pytest.raises(InvalidValue):
        pos.decide_manual_exit(D("1"), "  ")
    with pytest.raises(InvalidValue):
        pos.decide_manual_exit(D("0"), "alice")
    decision = pos.decide_exit(D("0.5"), pos.opened_at)  # stop-loss
    assert decision is not None
    pos.submit_exit(decision, cause(1))
    with pytest.raises(InvalidTransition, match="selling by its stop_loss exit"):
        pos.decide_manual_exit(D("0.5"), "alice")
    pos.record_exit_fill(D("0.5"), D("100"), D("0"), cause(2))
    with pytest.raises(InvalidTransition, match="closed"):
        pos.decide_manual_exit(D("0.5"), "alice")
