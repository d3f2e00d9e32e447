"""Human-readable lines for recorded events (the demo timeline and `sniper history`)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from domain.events import (
    EmergencyExitFilled,
    EmergencyStopActivated,
    EmergencyStopCleared,
    EntryFeeLearnt,
    ExitFilled,
    ExitOrderFailed,
    ExitOrderSubmitted,
    ListingAnnounced,
    ListingReadyDetected,
    ManualExitFilled,
    MaxHoldTimeReached,
    PositionClosed,
    PositionOpened,
    PositionPeakRaised,
    Recorded,
    RiskCheckFailed,
    SnipeExpired,
    SnipeFailed,
    SnipeOrderFilled,
    SnipeOrderRejected,
    SnipeOrderSubmitted,
    SnipeScheduled,
    SnipeTargetAmended,
    SnipeTargetCancelled,
    SnipeTargetCreated,
    SnipeTargetReady,
    StopLossHit,
    TakeProfitHit,
    TrailingStopHit,
)


def fmt(amount: Decimal, places: int | None = None) -> str:
    if places is not None:
        amount = amount.quantize(Decimal(1).scaleb(-places))
    text = format(amount, "f")
    if "." in text and places is None:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def signed(amount: Decimal, places: int = 4) -> str:
    q = amount.quantize(Decimal(1).scaleb(-places))
    return f"+{fmt(q, places)}" if q > 0 else fmt(q, places)


def _clock(rec: Recorded) -> str:
    return rec.occurred_at.strftime("%H:%M:%S.") + f"{rec.occurred_at.microsecond // 1000:03d}"


def _exit_name(ev: ExitFilled) -> str:
    if isinstance(ev, TakeProfitHit):
        return f"take-profit {ev.level + 1 if ev.level is not None else ''}".strip()
    return {
        StopLossHit: "stop-loss",
        TrailingStopHit: "trailing stop",
        MaxHoldTimeReached: "max hold time",
        EmergencyExitFilled: "emergency exit",
        ManualExitFilled: "closed by hand",
    }.get(type(ev), type(ev).__name__)


def describe(rec: Recorded) -> tuple[str, str]:
    """(symbol or subject, sentence) for one event."""
    ev = rec.event
    match ev:
        case ListingAnnounced():
            return ev.symbol, f"listing announced: {ev.full_name}, launch {ev.launch_at:%Y-%m-%d %H:%M:%S}"
        case ListingReadyDetected():
            return ev.symbol, (f"ready state (sts={ev.sts}, st={ev.st}, tt={ev.tt}) "
                               f"seen {_lead(ev.lead_seconds)} before launch")
        case SnipeTargetCreated():
            cap = "" if ev.max_entry_price is None else f", entry capped at {fmt(ev.max_entry_price)}"
            return ev.symbol, (f"target {ev.target_id} created: {fmt(ev.quote_amount)} {ev.quote_asset}, exit plan "
                               f"{ev.exit_plan.name}{cap}")
        case SnipeTargetReady():
            return "", f"target {ev.target_id} ready ({ev.pattern}, confidence {fmt(ev.confidence)})"
        case SnipeScheduled():
            return "", (f"snipe {ev.target_id} scheduled for {ev.execute_at:%H:%M:%S}, "
                        f"deadline {ev.deadline_at:%H:%M:%S}")
        case SnipeOrderSubmitted():
            if ev.max_entry_price is not None:
                return ev.symbol, (f"IOC limit buy for {fmt(ev.quote_amount)} at most {fmt(ev.max_entry_price)} each "
                                   f"submitted (client id {ev.client_order_id})")
            return ev.symbol, f"market buy for {fmt(ev.quote_amount)} submitted (client id {ev.client_order_id})"
        case SnipeOrderFilled():
            return "", (
                f"FILLED {fmt(ev.quantity)} @ {fmt(ev.price)} = {fmt(ev.quote_spent)}, "
                f"fee {fmt(ev.fee)} {ev.fee_asset}; "
                f"{ev.attempts} attempt{'s' if ev.attempts != 1 else ''}, {fmt(ev.latency_ms, 1)} ms after launch"
            )
        case SnipeOrderRejected():
            return "", f"order rejected ({ev.code}): {ev.reason}"
        case RiskCheckFailed():
            return "", f"REFUSED by risk limits: {'; '.join(ev.reasons)}"
        case SnipeFailed():
            return "", f"snipe {ev.target_id} failed: {ev.reason}"
        case SnipeExpired():
            return "", f"target {ev.target_id} EXPIRED: {ev.reason}"
        case SnipeTargetCancelled():
            return "", f"target {ev.target_id} cancelled by {ev.cancelled_by}: {ev.reason}"
        case PositionOpened():
            return ev.symbol, (
                f"position {ev.position_id} opened: {fmt(ev.quantity)} @ {fmt(ev.entry_price)}, cost {fmt(ev.cost)}"
            )
        case EntryFeeLearnt():
            effect = (f"holding {fmt(ev.quantity)} less" if ev.quantity else f"cost {fmt(ev.cost)} more" if ev.cost
                      else "nothing to adjust")
            pnl = f", P&L {signed(ev.realised_pnl)}" if ev.realised_pnl else ""
            return "", f"entry fee learnt: {fmt(ev.fee)} {ev.fee_asset} ({effect}{pnl})"
        case ExitOrderSubmitted():
            who = f" by {ev.requested_by}" if ev.requested_by else ""
            reason = ev.reason.replace("_", " ")
            return "", f"exit ({reason}{who}) sell {fmt(ev.quantity)} at ~{fmt(ev.trigger_price)} submitted"
        case PositionPeakRaised():
            return "", f"peak raised to {fmt(ev.peak_price)}"
        case ExitFilled():
            return "", (
                f"{_exit_name(ev)}: sold {fmt(ev.quantity)} @ {fmt(ev.price)} for {fmt(ev.proceeds)}, "
                f"fee {fmt(ev.fee)}, P&L {signed(ev.realised_pnl)}"
            )
        case ExitOrderFailed():
            return "", f"exit order failed: {ev.reason}"
        case PositionClosed():
            return "", f"position {ev.position_id} CLOSED, realised P&L {signed(ev.realised_pnl)}"
        case EmergencyStopActivated():
            return ev.scope, f"EMERGENCY STOP by {ev.activated_by}: {ev.reason}"
        case EmergencyStopCleared():
            return ev.scope, f"emergency stop cleared by {ev.cleared_by}"
        case SnipeTargetAmended():
            cap = "no entry cap" if ev.max_entry_price is None else f"entry capped at {fmt(ev.max_entry_price)}"
            return "", (f"target {ev.target_id} amended by {ev.amended_by}: {fmt(ev.quote_amount)}, exit plan "
                        f"{ev.exit_plan.name}, {cap}")
        case _:
            return "", type(ev).__name__


def _lead(seconds: int) -> str:
    minutes, sec = divmod(abs(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    text = f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{sec:02d}s"
    return text if seconds >= 0 else f"-{text}"


def line(rec: Recorded, user_label: Callable[[str], str] = lambda u: u, symbols: dict[str, str] | None = None) -> str:
    """One timeline line. `symbols` maps stream ids to symbols so every line can show one."""
    subject, text = describe(rec)
    if symbols is not None:
        if subject and not rec.stream_id.startswith("safety-"):
            symbols[rec.stream_id] = subject
        subject = subject or symbols.get(rec.stream_id, "")
    user = "" if rec.user_id == "system" else user_label(rec.user_id)
    return f"{_clock(rec)}  {subject:<10} {user:<8} {text}"
