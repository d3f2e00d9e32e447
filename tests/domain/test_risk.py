"""Risk profile and pre-trade checks."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from domain.errors import DomainError, InvalidValue, RiskLimitExceeded
from domain.risk import (
    DEFAULT_RISK_PROFILE,
    RiskProfile,
    TradeProposal,
    loss_at_stop,
    position_loss_at_stop,
    risk_limits,
    standing_limits,
)

PROFILE = RiskProfile(
    max_quote_per_snipe=Decimal("100"),
    max_concurrent_positions=3,
    max_daily_loss=Decimal("50"),
    max_total_exposure=Decimal("300"),
    allowed_quote_assets=("USDT", "USDC"),
)

FINE = TradeProposal(
    quote_amount=Decimal("50"),
    quote_asset="USDT",
    open_positions=1,
    open_exposure=Decimal("100"),
    realised_pnl_today=Decimal("-10"),
    profile=PROFILE,
    stop_loss_percent=Decimal("10"),  # could lose 5 + 0.025 + 0.0225 in fees: 5.0475
)


class TestRiskProfile:
    def test_default_profile(self) -> None:
        p = DEFAULT_RISK_PROFILE
        assert (p.max_quote_per_snipe, p.max_concurrent_positions, p.max_daily_loss, p.max_total_exposure) == (
            Decimal("100"), 3, Decimal("50"), Decimal("300"),
        )
        assert p.allowed_quote_assets == ("USDT",)
        assert p.live is False

    def test_strings_become_decimals_and_lists_tuples(self) -> None:
        p = RiskProfile("10.5", 1, "2", "30", ["USDT"])  # type: ignore[arg-type]
        assert p.max_quote_per_snipe == Decimal("10.5") and isinstance(p.max_quote_per_snipe, Decimal)
        assert isinstance(p.max_daily_loss, Decimal) and isinstance(p.max_total_exposure, Decimal)
        assert p.allowed_quote_assets == ("USDT",)

    @pytest.mark.parametrize(
        "field", ["max_quote_per_snipe", "max_daily_loss", "max_total_exposure"]
    )
    def test_negative_limits_refused(self, field: str) -> None:
        with pytest.raises(InvalidValue, match="negative"):
            replace(PROFILE, **{field: Decimal("-1")})

    @pytest.mark.parametrize(
        "field", ["max_quote_per_snipe", "max_daily_loss", "max_total_exposure"]
    )
    def test_float_limits_refused(self, field: str) -> None:
        with pytest.raises(InvalidValue):
            replace(PROFILE, **{field: 1.0})

    @pytest.mark.parametrize("n", [-1, True, 2.0, "3"])
    def test_concurrency_must_be_non_negative_int(self, n: object) -> None:
        with pytest.raises(InvalidValue, match="concurrent"):
            replace(PROFILE, max_concurrent_positions=n)

    def test_some_quote_asset_must_be_allowed(self) -> None:
        with pytest.raises(InvalidValue, match="quote asset"):
            replace(PROFILE, allowed_quote_assets=())


class TestStandingLimits:
    """What a target's creation or amendment is judged on: the buy itself, not the book."""

    def test_the_books_limits_wait_for_the_launch(self) -> None:
        full = replace(FINE, open_positions=3, open_exposure=Decimal("300"), realised_pnl_today=Decimal("-50"))
        assert standing_limits().unmet(full) == []
        assert risk_limits().unmet(full) == [
            "3 positions already open, limit 3",
            "exposure 300 + 50 would exceed the limit 300",
            risk_limits().unmet(full)[2],  # the daily loss, worded by its own tests
        ]

    def test_the_buy_itself_is_judged_at_once(self) -> None:
        bad = replace(FINE, quote_amount=Decimal("0.5"), quote_asset="BTC", min_notional=Decimal("1"))
        assert standing_limits().unmet(bad) == [
            "quote amount 0.5 is below the pair's minimum order value 1",
            "quote asset BTC is not allowed (USDT, USDC)",
        ]
        assert standing_limits().unmet(replace(FINE, quote_amount=Decimal("150"))) == [
            "quote amount 150 exceeds the per-snipe limit 100"]


class TestRiskLimits:
    def test_fine_proposal_passes(self) -> None:
        assert risk_limits().unmet(FINE) == []
        assert risk_limits().is_satisfied_by(FINE)

    def test_default_profile_is_used_when_none_is_given(self) -> None:
        p = TradeProposal(Decimal("150"), "USDT", 0, Decimal("0"), Decimal("0"), stop_loss_percent=Decimal("10"))
        assert p.profile is DEFAULT_RISK_PROFILE
        assert risk_limits().unmet(p) == ["quote amount 150 exceeds the per-snipe limit 100"]

    @pytest.mark.parametrize(
        "changes",
        [
            {"quote_amount": Decimal("100")},  # exactly the per-snipe limit
            {"quote_amount": Decimal("100"), "open_exposure": Decimal("200")},  # exactly the exposure limit
            {"open_positions": 2},  # one below the limit
            {"realised_pnl_today": Decimal("-44.9525")},  # with this snipe at its stop-loss: exactly the limit
            {"realised_pnl_today": Decimal("500")},  # profit
            {"quote_asset": "USDC"},
        ],
    )
    def test_boundaries_that_still_pass(self, changes: dict[str, object]) -> None:
        assert risk_limits().unmet(replace(FINE, **changes)) == []

    @pytest.mark.parametrize(
        ("changes", "reason"),
        [
            ({"quote_amount": Decimal("0")}, "quote amount must be positive: 0"),
            ({"quote_amount": Decimal("-5")}, "quote amount must be positive: -5"),
            ({"quote_amount": Decimal("100.01")}, "quote amount 100.01 exceeds the per-snipe limit 100"),
            ({"quote_asset": "BTC"}, "quote asset BTC is not allowed (USDT, USDC)"),
            ({"open_positions": 3}, "3 positions already open, limit 3"),
            ({"open_exposure": Decimal("250.01")}, "exposure 250.01 + 50 would exceed the limit 300"),
            ({"realised_pnl_today": Decimal("-50")}, "today's loss 50 has reached the daily limit 50"),
            ({"realised_pnl_today": Decimal("-80")}, "today's loss 80 has reached the daily limit 50"),
        ],
    )
    def test_each_broken_limit_gives_its_reason(self, changes: dict[str, object], reason: str) -> None:
        proposal = replace(FINE, **changes)
        assert risk_limits().unmet(proposal) == [reason]
        assert not risk_limits().is_satisfied_by(proposal)

    def test_every_broken_limit_is_reported(self) -> None:
        bad = TradeProposal(
            quote_amount=Decimal("500"),
            quote_asset="BTC",
            open_positions=5,
            open_exposure=Decimal("250"),
            realised_pnl_today=Decimal("-75.5"),
            profile=PROFILE,
        )
        assert risk_limits().unmet(bad) == [
            "quote amount 500 exceeds the per-snipe limit 100",
            "quote asset BTC is not allowed (USDT, USDC)",
            "5 positions already open, limit 3",
            "exposure 250 + 500 would exceed the limit 300",
            "today's loss 75.5 has reached the daily limit 50",
        ]

    def test_zero_concurrency_blocks_every_trade(self) -> None:
        proposal = replace(FINE, open_positions=0, profile=replace(PROFILE, max_concurrent_positions=0))
        assert risk_limits().unmet(proposal) == ["0 positions already open, limit 0"]


class TestRiskLimitExceeded:
    def test_carries_every_reason(self) -> None:
        reasons = risk_limits().unmet(replace(FINE, quote_asset="BTC", open_positions=3))
        err = RiskLimitExceeded(reasons)
        assert isinstance(err, DomainError)
        assert err.reasons == reasons
        assert str(err) == "quote asset BTC is not allowed (USDT, USDC); 3 positions already open, limit 3"


class TestTheTradeAboutToBeMade:
    """The daily loss limit counts what the new trade and the open positions could still lose at
    their stop-losses, fees both ways, not only the loss realised so far (issue 12)."""

    LIMIT_5 = replace(PROFILE, max_daily_loss=Decimal("5"))

    def test_the_reported_case_is_refused(self) -> None:
        # A loss of 4.018 today, then a 20 USDT snipe with a 10 % stop-loss: 2 + 0.01 + 0.009 more.
        proposal = TradeProposal(
            Decimal("20"), "USDT", 0, Decimal("0"), Decimal("-4.018"), self.LIMIT_5, stop_loss_percent=Decimal("10"),
        )
        assert proposal.possible_loss == Decimal("2.019")
        assert risk_limits().unmet(proposal) == [
            "today's loss 4.018 + open positions at their stop-losses 0 + this snipe at its 10% stop-loss, fees both "
            "ways, 2.019 = 6.037 would exceed the daily loss limit 5"
        ]

    def test_the_same_snipe_on_a_fresh_day_goes(self) -> None:
        proposal = TradeProposal(
            Decimal("20"), "USDT", 0, Decimal("0"), Decimal("0"), self.LIMIT_5, stop_loss_percent=Decimal("10"),
        )
        assert risk_limits().unmet(proposal) == []

    def test_open_positions_count_at_their_stop_losses(self) -> None:
        proposal = TradeProposal(
            Decimal("20"), "USDT", 1, Decimal("20"), Decimal("0"), self.LIMIT_5, stop_loss_percent=Decimal("10"),
            open_at_risk=Decimal("3"),
        )
        assert risk_limits().unmet(proposal) == [
            "today's loss 0 + open positions at their stop-losses 3 + this snipe at its 10% stop-loss, fees both "
            "ways, 2.019 = 5.019 would exceed the daily loss limit 5"
        ]

    def test_with_no_stop_loss_the_whole_amount_may_be_lost(self) -> None:
        proposal = TradeProposal(Decimal("6"), "USDT", 0, Decimal("0"), Decimal("0"), self.LIMIT_5)
        assert proposal.possible_loss == Decimal("6")
        assert risk_limits().unmet(proposal) == [
            "today's loss 0 + open positions at their stop-losses 0 + this snipe with no stop-loss (all of it) 6 = 6 "
            "would exceed the daily loss limit 5"
        ]

    def test_a_profit_today_does_not_make_room_for_more_loss(self) -> None:
        proposal = TradeProposal(
            Decimal("60"), "USDT", 0, Decimal("0"), Decimal("100"), self.LIMIT_5, stop_loss_percent=Decimal("10"),
        )
        assert "would exceed the daily loss limit 5" in risk_limits().unmet(proposal)[0]

    def test_loss_at_stop_and_position_loss_at_stop(self) -> None:
        assert loss_at_stop(Decimal("100"), Decimal("10"), Decimal("0.001")) == Decimal("10.19")
        # 10 coins bought at 2 for 20.02 (fee in the cost): at -10 %, 18 back less 0.018 of fee.
        assert position_loss_at_stop(Decimal("20.02"), Decimal("10"), Decimal("2"), Decimal("10"), Decimal("0.001")) \
            == Decimal("2.038")
        assert position_loss_at_stop(Decimal("20"), Decimal("10"), Decimal("2"), None, Decimal("0.001")) \
            == Decimal("20")


class TestMinimumOrderValue:
    def test_below_the_pairs_minimum_is_refused_when_known(self) -> None:
        small = replace(FINE, quote_amount=Decimal("0.5"), min_notional=Decimal("1"))
        assert risk_limits().unmet(small) == ["quote amount 0.5 is below the pair's minimum order value 1"]

    def test_an_amount_finer_than_money_is_carried_is_refused_whatever_the_pair(self) -> None:
        tiny = replace(FINE, quote_amount=Decimal("0.000000000000000001"))
        assert risk_limits().unmet(tiny) == ["quote amount 0.000000000000000001 has more than 8 decimal places"]
        assert risk_limits().unmet(replace(FINE, quote_amount=Decimal("0.00000001"))) == []

    def test_unknown_minimum_is_not_checked(self) -> None:
        assert risk_limits().unmet(replace(FINE, quote_amount=Decimal("0.5"))) == []
        assert risk_limits().unmet(replace(FINE, quote_amount=Decimal("1"), min_notional=Decimal("1"))) == []
