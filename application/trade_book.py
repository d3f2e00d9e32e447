"""The trade book: a read model folded from the trade history.

It answers what the use cases and queries ask of the whole book (which targets are
watching, which positions are open on a symbol, how much a user lost today) without
loading every stream. It follows the store by global position, so it can catch up
from where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal

from application.ports import EventStore
from application.views import (
    BUY,
    ENTRY_FEE,
    SELL,
    WRITE_OFF,
    DailyPnl,
    ListingView,
    PositionView,
    TargetView,
    TradeRecord,
)
from domain.events import (
    DustWrittenOff,
    EmergencyStopActivated,
    EmergencyStopCleared,
    EntryFeeLearnt,
    ExitFilled,
    ExitOrderSubmitted,
    ListingAnnounced,
    ListingReadyDetected,
    PositionClosed,
    PositionOpened,
    Recorded,
    RiskCheckFailed,
    SnipeExpired,
    SnipeFailed,
    SnipeOrderFilled,
    SnipeOrderSubmitted,
    SnipeScheduled,
    SnipeTargetAmended,
    SnipeTargetCancelled,
    SnipeTargetCreated,
    SnipeTargetReady,
)

# The launch time of a placeholder target (an event for a target never seen created); aware like every
# other time, so it compares and sorts with them.
UNKNOWN_LAUNCH_AT = datetime.min.replace(tzinfo=UTC)


def halt_reason(stops: Mapping[str, str], user_id: str) -> str | None:
    """Why trading is halted for this user, given the active stops (scope -> reason); global first."""
    if "global" in stops:
        return f"global emergency stop: {stops['global']}"
    if user_id in stops:
        return f"emergency stop: {stops[user_id]}"
    return None


class TradeBook:
    def __init__(self) -> None:
        self.position = 0
        self.listings: dict[str, ListingView] = {}
        self.targets: dict[str, TargetView] = {}
        self.positions: dict[str, PositionView] = {}
        self._daily_pnl: dict[tuple[str, date], Decimal] = {}
        self.stops: dict[str, str] = {}
        # Other scopes whose stop holds for a user: in a replay, the person its trader stands in for
        # (`alice` for `alice.<run>`), so a person's `sniper halt` holds for the replay too.
        self.stop_aliases: Callable[[str], tuple[str, ...]] = lambda user_id: ()
        # Each position's stop-loss percent, from its exit plan (the daily loss limit counts what an
        # open position would still lose at it).
        self.stop_losses: dict[str, Decimal] = {}
        # Every fill in recording order: entries (PositionOpened) and exits (ExitFilled), and the entry
        # fees learnt after their fill (EntryFeeLearnt).
        self.trades: list[TradeRecord] = []
        # Positions, open or closed, whose buy's fee is not known yet (PositionOpened with fee asset ""
        # and no EntryFeeLearnt since), in the order they were opened: the reconciliation learns them.
        self.entry_fees_unknown: dict[str, None] = {}

    # --- following the store ---------------------------------------------------------

    async def catch_up(self, store: EventStore, batch: int = 1000) -> int:
        """Apply every event stored after what we have seen. Returns how many were applied."""
        applied = 0
        while True:
            chunk = await store.read_all(after=self.position, limit=batch)
            for rec in chunk:
                self.apply(rec)
            applied += len(chunk)
            if len(chunk) < batch:
                return applied

    def apply(self, rec: Recorded) -> None:
        if rec.position is not None:
            if rec.position <= self.position:
                return
            self.position = rec.position
        ev = rec.event
        match ev:
            case ListingAnnounced():
                self.listings[ev.coin_id] = ListingView(ev.coin_id, ev.ticker, ev.symbol, ev.launch_at)
            case ListingReadyDetected():
                if ev.coin_id in self.listings:
                    self.listings[ev.coin_id].ready = True
            case SnipeTargetCreated():
                self.targets[ev.target_id] = TargetView(
                    ev.target_id, rec.user_id, ev.coin_id, ev.symbol, ev.launch_at, ev.quote_amount, ev.exit_plan.name,
                    confidence=ev.confidence, live=ev.live, max_entry_price=ev.max_entry_price,
                )
            case SnipeTargetReady():
                self._target(ev.target_id, "ready").confidence = ev.confidence
            case SnipeScheduled():
                self._target(ev.target_id, "scheduled").execute_at = ev.execute_at
            case SnipeOrderSubmitted():
                self._target(ev.target_id, "executing")
            case SnipeOrderFilled():
                self._target(ev.target_id, "filled")
            case RiskCheckFailed():
                self._target(ev.target_id, None).reason = "; ".join(ev.reasons)
            case SnipeFailed():
                self._target(ev.target_id, "failed").reason = ev.reason
            case SnipeExpired():
                self._target(ev.target_id, "expired").reason = ev.reason
            case SnipeTargetCancelled():
                self._target(ev.target_id, "cancelled").reason = ev.reason
            case SnipeTargetAmended():
                view = self._target(ev.target_id, None)
                view.quote_amount = ev.quote_amount
                view.exit_strategy = ev.exit_plan.name
                view.max_entry_price = ev.max_entry_price
            case PositionOpened():
                self.stop_losses[ev.position_id] = ev.exit_plan.stop_loss_percent
                self.positions[ev.position_id] = PositionView(
                    ev.position_id, ev.target_id, rec.user_id, ev.symbol, ev.entry_price, ev.quantity, ev.quantity,
                    ev.cost, ev.cost, fees=ev.entry_fee if ev.entry_fee_asset == ev.quote_asset else Decimal(0),
                    opened_at=ev.opened_at, quote_asset=ev.quote_asset,
                )
                self.trades.append(TradeRecord(
                    rec.position or 0, rec.occurred_at, rec.user_id, ev.position_id, ev.target_id, ev.symbol, BUY,
                    type(ev).__name__, ev.entry_price, ev.quantity, ev.cost, ev.entry_fee, ev.entry_fee_asset,
                ))
                if ev.entry_fee_asset == "":
                    self.entry_fees_unknown[ev.position_id] = None
            case EntryFeeLearnt():
                self.entry_fees_unknown.pop(ev.position_id, None)
                pos = self.positions.get(ev.position_id)
                if pos is not None:
                    pos.quantity -= ev.quantity
                    pos.remaining -= ev.quantity
                    pos.cost += ev.cost
                    pos.remaining_cost += ev.cost + ev.realised_pnl
                    pos.fees += ev.cost
                    pos.realised_pnl += ev.realised_pnl
                    if ev.realised_pnl:
                        key = (rec.user_id, rec.occurred_at.date())
                        self._daily_pnl[key] = self._daily_pnl.get(key, Decimal(0)) + ev.realised_pnl
                    self.trades.append(TradeRecord(
                        rec.position or 0, rec.occurred_at, rec.user_id, pos.position_id, pos.target_id, pos.symbol,
                        ENTRY_FEE, type(ev).__name__, Decimal(0), ev.quantity, ev.cost, ev.fee, ev.fee_asset,
                        ev.realised_pnl,
                    ))
            case ExitOrderSubmitted():
                pass
            case ExitFilled():
                pos = self.positions.get(ev.position_id)
                if pos is not None:
                    pos.remaining -= ev.quantity
                    pos.remaining_cost -= ev.cost_released
                    pos.proceeds += ev.proceeds
                    pos.fees += ev.fee
                    pos.realised_pnl += ev.realised_pnl
                    pos.last_exit = type(ev).__name__
                    pos.exits.append(type(ev).__name__)
                    pos.status = "closed" if pos.remaining == 0 else "partially exited"
                    key = (rec.user_id, rec.occurred_at.date())
                    self._daily_pnl[key] = self._daily_pnl.get(key, Decimal(0)) + ev.realised_pnl
                    # A write-off is no sale: its own side, and no order behind it.
                    written_off = isinstance(ev, DustWrittenOff)
                    self.trades.append(TradeRecord(
                        rec.position or 0, rec.occurred_at, rec.user_id, pos.position_id, pos.target_id, pos.symbol,
                        WRITE_OFF if written_off else SELL, type(ev).__name__, ev.price, ev.quantity, ev.proceeds,
                        ev.fee, pos.quote_asset, ev.realised_pnl, None if written_off else ev.client_order_id,
                    ))
            case PositionClosed():
                pos = self.positions.get(ev.position_id)
                if pos is not None:
                    pos.status = "closed"
                    pos.closed_at = rec.occurred_at
            case EmergencyStopActivated():
                self.stops[ev.scope] = ev.reason
            case EmergencyStopCleared():
                self.stops.pop(ev.scope, None)
            case _:
                pass

    def _target(self, target_id: str, status: str | None) -> TargetView:
        view = self.targets.get(target_id)
        if view is None:  # an event for a target we never saw created: keep a placeholder
            view = TargetView(target_id, "", "", "", UNKNOWN_LAUNCH_AT, Decimal(0), "")
            self.targets[target_id] = view
        if status is not None:
            view.status = status
        return view

    # --- questions ---------------------------------------------------------------------

    def halted(self, user_id: str) -> str | None:
        """Why trading is halted for this user (global stop first), or None."""
        found = halt_reason(self.stops, user_id)
        if found is None:
            for alias in self.stop_aliases(user_id):
                if alias in self.stops:
                    return f"emergency stop ({alias}): {self.stops[alias]}"
        return found

    def stop_scopes(self, user_id: str) -> tuple[str, ...]:
        """The scopes whose emergency stop holds for this user: global, the user's own, aliases."""
        return ("global", user_id, *self.stop_aliases(user_id))

    def targets_of_coin(self, coin_id: str, statuses: set[str]) -> list[TargetView]:
        return [t for t in self.targets.values() if t.coin_id == coin_id and t.status in statuses]

    def targets_in(self, statuses: set[str]) -> list[TargetView]:
        return [t for t in self.targets.values() if t.status in statuses]

    def open_positions(self, user_id: str | None = None, symbol: str | None = None) -> list[PositionView]:
        return [
            p
            for p in self.positions.values()
            if p.status != "closed"
            and (user_id is None or p.user_id == user_id)
            and (symbol is None or p.symbol == symbol)
        ]

    def open_exposure(self, user_id: str) -> Decimal:
        return sum((p.remaining_cost for p in self.open_positions(user_id)), Decimal(0))

    def realised_pnl_on(self, user_id: str, day: date) -> Decimal:
        return self._daily_pnl.get((user_id, day), Decimal(0))

    def daily_pnl(self) -> list[DailyPnl]:
        """Every (user, day) with an exit fill, by user then day."""
        return [DailyPnl(user, day, pnl) for (user, day), pnl in sorted(self._daily_pnl.items())]

    def restore_daily_pnl(self, rows: Iterable[DailyPnl]) -> None:
        """Seed days folded elsewhere (a persisted projection folds its batch on top of them)."""
        for row in rows:
            self._daily_pnl[(row.user_id, row.day)] = row.realised_pnl
