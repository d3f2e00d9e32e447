"""A buy's fee learnt after its fill was recorded without it (EntryFeeLearnt, issue 14): the position
takes it as it would have taken a fee known at the fill. A fee in the coin comes off what it holds, a
quote fee adds to its cost, a third asset's leaves both; recorded once; a closed position's P&L takes
a quote fee, and a fee in the coin changes nothing there (its exit sold what the account held)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.errors import InvalidTransition, InvalidValue
from domain.events import EntryFeeLearnt
from domain.exit_plans import PRESETS
from domain.position import ExitDecision, ExitReason, Position, PositionStatus
from domain.values import Symbol
from tests.domain.support import D, cause, state_of, type_names

SYMBOL = Symbol("NEW", "USDT")
PRICE, BOUGHT, SPENT = D("0.3"), D("33.33"), D("9.999")
BASE_FEE = D("0.016665")  # MEXC's 0.05 % taker fee, out of the coin
QUOTE_FEE = D("0.0049995")


def bought(fee: Decimal = Decimal(0), fee_asset: str = "") -> Position:
    """33.33 NEW for 9.999 USDT; with the fee unknown by default (fee 0, asset "")."""
    return Position.open("t-fee", "u1", SYMBOL, PRICE, BOUGHT, SPENT, fee, fee_asset, 2, PRESETS["balanced"],
                         cause(0, "t-fee"))


def money(pos: Position) -> tuple[Decimal, ...]:
    return pos.quantity, pos.remaining, pos.total_cost, pos.remaining_cost, pos.fees, pos.realised_pnl


def learnt(pos: Position) -> EntryFeeLearnt:
    [event] = [r.event for r in pos.pending if isinstance(r.event, EntryFeeLearnt)]
    return event


def test_a_fee_in_the_coin_reduces_what_is_held_as_if_known_at_the_fill() -> None:
    pos = bought()
    assert not pos.entry_fee_known and money(pos)[:2] == (BOUGHT, BOUGHT)
    pos.learn_entry_fee(BASE_FEE, "NEW", cause(5))

    assert pos.entry_fee_known and pos.entry_fee_asset == "NEW"
    assert money(pos) == money(bought(BASE_FEE, "NEW"))
    assert (pos.quantity, pos.remaining, pos.total_cost, pos.fees) == (D("33.313335"), D("33.313335"), SPENT, 0)
    assert learnt(pos) == EntryFeeLearnt(pos.position_id, BASE_FEE, "NEW", BASE_FEE, D(0), D(0))


def test_a_fee_in_the_quote_adds_to_the_cost_as_if_known_at_the_fill() -> None:
    pos = bought()
    pos.learn_entry_fee(QUOTE_FEE, "USDT", cause(5))

    assert money(pos) == money(bought(QUOTE_FEE, "USDT"))
    assert (pos.quantity, pos.total_cost, pos.remaining_cost, pos.fees) == (BOUGHT, D("10.0039995"),
                                                                             D("10.0039995"), QUOTE_FEE)
    assert learnt(pos) == EntryFeeLearnt(pos.position_id, QUOTE_FEE, "USDT", D(0), QUOTE_FEE, D(0))


def test_a_fee_in_a_third_asset_leaves_what_is_held_and_the_cost() -> None:
    pos = bought()
    before = money(pos)
    pos.learn_entry_fee(D("0.0012"), "MX", cause(5))

    assert money(pos) == before == money(bought(D("0.0012"), "MX"))
    assert pos.entry_fee_known and pos.entry_fee_asset == "MX"
    assert learnt(pos) == EntryFeeLearnt(pos.position_id, D("0.0012"), "MX", D(0), D(0), D(0))


def test_a_free_fill_learnt_changes_nothing_but_the_fee_is_known() -> None:
    pos = bought()
    pos.learn_entry_fee(D(0), "USDT", cause(5))
    assert money(pos) == money(bought(D(0), "USDT")) and pos.entry_fee_known


def test_it_is_recorded_once() -> None:
    pos = bought()
    pos.learn_entry_fee(BASE_FEE, "NEW", cause(5))
    with pytest.raises(InvalidTransition, match="again"):
        pos.learn_entry_fee(BASE_FEE, "NEW", cause(6))
    with pytest.raises(InvalidTransition, match="again"):
        bought(BASE_FEE, "NEW").learn_entry_fee(BASE_FEE, "NEW", cause(6))  # known at the fill
    assert type_names(pos.pending) == ["PositionOpened", "EntryFeeLearnt"]


@pytest.mark.parametrize(("fee", "asset"), [(D("-0.1"), "NEW"), (D("0.1"), "")])
def test_a_learnt_fee_is_not_negative_and_names_its_asset(fee: Decimal, asset: str) -> None:
    with pytest.raises(InvalidValue):
        bought().learn_entry_fee(fee, asset, cause(5))


def test_not_while_an_exit_is_pending() -> None:
    # The exit was sized on what the position held: the fee waits for it to settle.
    pos = bought()
    pos.submit_exit(ExitDecision(ExitReason.STOP_LOSS, None, BOUGHT, D("0.2")), cause(3))
    with pytest.raises(InvalidTransition, match="exit"):
        pos.learn_entry_fee(BASE_FEE, "NEW", cause(4))
    pos.record_exit_failure("refused", cause(5))
    pos.learn_entry_fee(BASE_FEE, "NEW", cause(6))
    assert pos.remaining == BOUGHT - BASE_FEE


def test_after_a_partial_exit_the_coins_come_off_what_is_left() -> None:
    pos = bought()
    pos.submit_exit(ExitDecision(ExitReason.TAKE_PROFIT, 0, D("10.00"), D("0.4")), cause(3))
    pos.record_exit_fill(D("0.4"), D("10.00"), D("0.002"), cause(4))
    cost_left = pos.remaining_cost
    pos.learn_entry_fee(BASE_FEE, "NEW", cause(5))

    assert (pos.quantity, pos.remaining) == (BOUGHT - BASE_FEE, D("23.33") - BASE_FEE)
    assert pos.remaining_cost == cost_left  # the same cost for fewer coins
    pos.submit_exit(ExitDecision(ExitReason.STOP_LOSS, None, pos.remaining, D("0.2")), cause(6))
    pos.record_exit_fill(D("0.2"), pos.remaining, D("0.001"), cause(7))
    assert pos.status is PositionStatus.CLOSED and pos.remaining_cost == 0
    # Over its life the position realised what it sold for, less the exit fees and what it cost.
    assert pos.realised_pnl == D("4.0") - D("0.002") + D("0.2") * (D("23.33") - BASE_FEE) - D("0.001") - SPENT


def test_a_fee_in_the_coin_that_does_not_fit_what_is_left_is_left_to_the_balance_reads() -> None:
    pos = bought()
    pos.submit_exit(ExitDecision(ExitReason.TAKE_PROFIT, 0, D("33.32"), D("0.4")), cause(3))
    pos.record_exit_fill(D("0.4"), D("33.32"), D("0.002"), cause(4))
    before = money(pos)
    pos.learn_entry_fee(BASE_FEE, "NEW", cause(5))  # 0.016665 out of the 0.01 left: not from here
    assert money(pos) == before and pos.entry_fee_known


def closed() -> Position:
    """Sold by the stop-loss with the fee unknown: the exit read the balance, sold 33.31 of it and
    wrote the rest off, as ExitOrders does."""
    pos = bought()
    pos.submit_exit(ExitDecision(ExitReason.STOP_LOSS, None, D("33.31"), D("0.2")), cause(3))
    pos.record_exit_fill(D("0.2"), D("33.31"), D("0.003331"), cause(4))
    pos.write_off("not in the account", cause(4))
    assert pos.status is PositionStatus.CLOSED
    return pos


def test_closed_a_fee_in_the_coin_changes_nothing_its_exit_sold_what_the_account_held() -> None:
    pos = closed()
    before = money(pos)
    pos.learn_entry_fee(BASE_FEE, "NEW", cause(10))
    assert money(pos) == before and pos.entry_fee_known
    assert learnt(pos) == EntryFeeLearnt(pos.position_id, BASE_FEE, "NEW", D(0), D(0), D(0))


def test_closed_a_quote_fee_is_taken_by_its_realised_pnl() -> None:
    pos = closed()
    pnl, cost = pos.realised_pnl, pos.total_cost
    pos.learn_entry_fee(QUOTE_FEE, "USDT", cause(10))

    assert (pos.realised_pnl, pos.total_cost, pos.remaining_cost) == (pnl - QUOTE_FEE, cost + QUOTE_FEE, 0)
    assert pos.status is PositionStatus.CLOSED
    assert learnt(pos) == EntryFeeLearnt(pos.position_id, QUOTE_FEE, "USDT", D(0), QUOTE_FEE, -QUOTE_FEE)


@pytest.mark.parametrize(("fee", "asset", "close"), [(BASE_FEE, "NEW", False), (QUOTE_FEE, "USDT", False),
                                                     (D("0.0012"), "MX", False), (QUOTE_FEE, "USDT", True)])
def test_the_fold_rebuilds_it(fee: Decimal, asset: str, close: bool) -> None:
    pos = closed() if close else bought()
    pos.learn_entry_fee(fee, asset, cause(10))
    again = Position.rehydrate(pos.stream_id, pos.pending)
    assert state_of(again) == state_of(pos)
