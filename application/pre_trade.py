"""The pre-trade check as the use cases ask it: when a person creates or amends a target, on
what nothing before the launch can change (domain.risk.standing_limits: the amount, its
precision, the pair's minimum order value when known, the quote asset, live trading allowed);
once more before its order is sent, on those and on the book as it stands then
(domain.risk.risk_limits: concurrent positions, exposure, daily loss)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from application.errors import ExchangeError, NotFound
from application.ports import PairRules, SymbolRules, TraderSettings
from application.trade_book import TradeBook
from domain.exit_plans import ExitPlan
from domain.risk import ASSUMED_TAKER_FEE, TradeProposal, position_loss_at_stop, risk_limits, standing_limits
from domain.values import Symbol


async def known_pair_rules(rules: PairRules | None, symbol: Symbol) -> SymbolRules | None:
    """The pair's rules when the exchange can state them; None (the checks that need them are
    skipped) for a pair not listed yet, an exchange that cannot tell, or no exchange at hand."""
    if rules is None:
        return None
    try:
        return await rules.symbol_rules(symbol)
    except (NotFound, ExchangeError):
        return None


def trade_proposal(
    book: TradeBook, settings: TraderSettings, *, quote_amount: Decimal, quote_asset: str, exit_plan: ExitPlan | None,
    day: date, rules: SymbolRules | None = None,
) -> TradeProposal:
    """The buy as the risk limits judge it, on `book` as it stands: its open positions at their
    stop-losses, and the loss realised on `day` (the launch's)."""
    fee = rules.taker_fee if rules is not None else ASSUMED_TAKER_FEE
    user = settings.user_id
    at_risk = sum(
        (position_loss_at_stop(p.remaining_cost, p.remaining, p.entry_price, book.stop_losses.get(p.position_id), fee)
         for p in book.open_positions(user)),
        Decimal(0),
    )
    return TradeProposal(
        quote_amount=quote_amount,
        quote_asset=quote_asset,
        open_positions=len(book.open_positions(user)),
        open_exposure=book.open_exposure(user),
        realised_pnl_today=book.realised_pnl_on(user, day),
        profile=settings.risk,
        stop_loss_percent=exit_plan.stop_loss_percent if exit_plan is not None else None,
        open_at_risk=at_risk,
        fee_rate=fee,
        min_notional=rules.min_notional if rules is not None and rules.min_notional > 0 else None,
    )


def risk_refusals(proposal: TradeProposal, *, live: bool, settings: TraderSettings) -> list[str]:
    """Every limit the buy breaks, in words; empty when it may go."""
    return _with_live(risk_limits().unmet(proposal), live, settings)


def standing_refusals(proposal: TradeProposal, *, live: bool, settings: TraderSettings) -> list[str]:
    """Every limit a target breaks at its creation or amendment, in words: those the book before
    the launch cannot change (see the module doc); the rest wait for the launch."""
    return _with_live(standing_limits().unmet(proposal), live, settings)


def _with_live(reasons: list[str], live: bool, settings: TraderSettings) -> list[str]:
    if live and not settings.risk.live:
        reasons.append("live trading is not enabled for this user")
    return reasons
