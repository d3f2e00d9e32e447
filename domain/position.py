"""Position: what a filled snipe holds, and how the exit plan sells it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum

from domain.aggregate import Aggregate
from domain.errors import InvalidTransition, InvalidValue
from domain.events import (
    Cause,
    DomainEvent,
    DustWrittenOff,
    EmergencyExitFilled,
    EntryFeeLearnt,
    ExitFilled,
    ExitOrderFailed,
    ExitOrderSubmitted,
    ManualExitFilled,
    MaxHoldTimeReached,
    PositionClosed,
    PositionOpened,
    PositionPeakRaised,
    StopLossHit,
    TakeProfitHit,
    TrailingStopHit,
)
from domain.exit_plans import HUNDRED, ExitPlan
from domain.specifications import PricePoint, stop_loss_hit, take_profit_reached
from domain.values import ClientOrderId, Symbol, quantize_money, round_down_to_scale


class PositionStatus(Enum):
    OPEN = "open"
    PARTIALLY_EXITED = "partially exited"
    CLOSED = "closed"


class ExitReason(Enum):
    TAKE_PROFIT = "take_profit"
    STOP_LOSS = "stop_loss"
    TRAILING_STOP = "trailing_stop"
    MAX_HOLD = "max_hold"
    EMERGENCY = "emergency"
    MANUAL = "manual"  # a person closed the position by hand (ClosePosition)

    @property
    def protective(self) -> bool:
        """An exit that caps a loss by price: it still sells under an automatic emergency stop.
        Max hold is not one: it sells at any price when time is up, and while the stop-loss and
        trailing stop keep guarding the position, holding on until a person clears the stop
        cannot lose more than they allow."""
        return self in (ExitReason.STOP_LOSS, ExitReason.TRAILING_STOP, ExitReason.EMERGENCY)


_FILL_EVENT: dict[ExitReason, type[ExitFilled]] = {
    ExitReason.TAKE_PROFIT: TakeProfitHit,
    ExitReason.STOP_LOSS: StopLossHit,
    ExitReason.TRAILING_STOP: TrailingStopHit,
    ExitReason.MAX_HOLD: MaxHoldTimeReached,
    ExitReason.EMERGENCY: EmergencyExitFilled,
    ExitReason.MANUAL: ManualExitFilled,
}


@dataclass(frozen=True, slots=True)
class ExitDecision:
    reason: ExitReason
    level: int | None
    quantity: Decimal
    trigger_price: Decimal
    requested_by: str = ""  # the person who asked for it (a close by hand); "" for the exit plan's rules


# How many failed exits a position remembers, to find one that filled after all.
_FAILED_KEPT = 8


def position_stream(position_id: str) -> str:
    return f"position-{position_id}"


def position_id_for(target_id: str) -> str:
    """A target fills at most once, so its position id is derived from it."""
    return "p-" + target_id.removeprefix("t-")


class Position(Aggregate):
    kind = "position"

    def _blank(self) -> None:
        self.position_id = ""
        self.target_id = ""
        self.symbol: Symbol | None = None
        self.entry_price = Decimal(0)
        self.quantity = Decimal(0)
        self.remaining = Decimal(0)
        self.total_cost = Decimal(0)
        self.remaining_cost = Decimal(0)
        self.proceeds = Decimal(0)
        self.fees = Decimal(0)
        self.realised_pnl = Decimal(0)
        self.quantity_scale = 8
        self.exit_plan: ExitPlan | None = None
        self.opened_at: datetime | None = None
        self.levels_hit: set[int] = set()
        self.peak_price = Decimal(0)
        self.pending_exit: ExitOrderSubmitted | None = None
        # Exits recorded failed or missing, newest last (at most _FAILED_KEPT): a sell whose
        # reply was lost may still show filled later, and is then recorded as the fill it was.
        self.failed_exits: dict[str, ExitOrderSubmitted] = {}
        self.entry_fee_asset = ""
        self.exits = 0
        self.status = PositionStatus.OPEN

    @classmethod
    def open(
        cls,
        target_id: str,
        user_id: str,
        symbol: Symbol,
        price: Decimal,
        quantity: Decimal,
        quote_spent: Decimal,
        fee: Decimal,
        fee_asset: str,
        quantity_scale: int,
        exit_plan: ExitPlan,
        cause: Cause,
    ) -> Position:
        """Open from a buy fill. A fee in the base asset reduces what we hold; a fee in the quote
        asset adds to what the position cost; a fee in a third asset (MX) leaves both (it has no
        price here: the cost misses it rather than guess). `fee_asset` "" with fee 0: the fee is not
        known yet (the exchange could not tell without waiting): it is learnt later (`learn_entry_fee`)."""
        if price <= 0 or quantity <= 0:
            raise InvalidValue("a position opens from a fill with positive price and quantity")
        if quote_spent <= 0 or fee < 0 or quantity_scale < 0:
            raise InvalidValue("a position opens from a positive spend, a non-negative fee and a quantity scale")
        held, cost = quantity, quote_spent
        if fee_asset == symbol.base:
            held = quantity - fee
        elif fee_asset in (symbol.quote, ""):
            cost = quote_spent + fee
        if held <= 0:
            raise InvalidValue("the fee leaves nothing to hold")
        pid = position_id_for(target_id)
        pos = cls(position_stream(pid), user_id)
        pos._blank()
        pos._record(
            PositionOpened(
                pid, target_id, symbol.code, symbol.quote, price, held, cost, fee, fee_asset, quantity_scale, exit_plan,
                cause.at,
            ), cause
        )
        return pos

    # --- queries --------------------------------------------------------------------

    def unrealised_pnl(self, price: Decimal) -> Decimal:
        return quantize_money(self.remaining * price - self.remaining_cost)

    @property
    def entry_fee_known(self) -> bool:
        """Whether the buy's fee is known (at the fill, or learnt after: EntryFeeLearnt). While it
        is not, the account may hold less of the coin than the position says (MEXC takes it from
        the coin). A position recorded before issue 14 with fee asset "" may have had a free fill
        or a fee in a third asset: learning it records it as what it was."""
        return self.entry_fee_asset != ""

    def decide_exit(
        self, price: Decimal, now: datetime, *, protective_only: bool = False, quantity_scale: int | None = None
    ) -> ExitDecision | None:
        """What the exit plan says to do at this price and time, if anything.

        Stop-loss is looked at first: on a tick that satisfies both, we protect the capital.
        With `protective_only` (an automatic emergency stop), only exits that cap a loss are
        decided (ExitReason.protective); take-profits and max hold wait.

        Quantities are rounded down to the step of `quantity_scale` decimals: the pair's step as
        the exchange states it now. Without it, the scale recorded at the fill is used, which may
        be a guess (a pair missing from the exchange's symbol list at fill time): coarser than
        the real step at worst, so a sell may leave sellable coins behind, never ask too finely.
        """
        if self.status is PositionStatus.CLOSED or self.pending_exit is not None or self.remaining <= 0:
            return None
        plan = self.exit_plan
        if plan is None or self.opened_at is None:  # not reached: open() sets both
            raise InvalidTransition(f"position {self.position_id}", self.status.value, "decide an exit before opening")
        scale = self.quantity_scale if quantity_scale is None else quantity_scale
        point = PricePoint(self.entry_price, price)
        if stop_loss_hit(plan.stop_loss_percent).is_satisfied_by(point):
            return ExitDecision(ExitReason.STOP_LOSS, None, self._all_out(scale), price)
        if plan.trailing_stop_percent is not None and self.peak_price > self.entry_price:
            trail_at = self.peak_price * (1 - plan.trailing_stop_percent / HUNDRED)
            if price <= trail_at:
                return ExitDecision(ExitReason.TRAILING_STOP, None, self._all_out(scale), price)
        if protective_only:
            return None
        if plan.max_hold_seconds is not None and now - self.opened_at >= timedelta(seconds=plan.max_hold_seconds):
            return ExitDecision(ExitReason.MAX_HOLD, None, self._all_out(scale), price)
        for index, level in enumerate(plan.take_profits):
            if index in self.levels_hit:
                continue
            if take_profit_reached(level.gain_percent).is_satisfied_by(point):
                return ExitDecision(ExitReason.TAKE_PROFIT, index, self._level_quantity(index, scale), price)
            break
        return None

    def decide_manual_exit(
        self, price: Decimal, requested_by: str, *, quantity_scale: int | None = None,
    ) -> ExitDecision:
        """A person's close by hand: everything held that the exchange can sell (rounded down to
        the step of `quantity_scale` decimals, default the one recorded at the fill), at market.
        `price` is the last price seen, recorded as what the person saw when asking;
        `requested_by` who asked."""
        if not requested_by.strip():
            raise InvalidValue("a close by hand needs the person who asked for it")
        if self.status is PositionStatus.CLOSED:
            raise InvalidTransition(f"position {self.position_id}", "closed", "be closed by hand")
        if self.pending_exit is not None:
            raise InvalidTransition(
                f"position {self.position_id}", f"selling by its {self.pending_exit.reason} exit", "be closed by hand"
            )
        if price <= 0:
            raise InvalidValue(f"a close by hand needs a positive price, got {price}")
        scale = self.quantity_scale if quantity_scale is None else quantity_scale
        return ExitDecision(ExitReason.MANUAL, None, self._all_out(scale), price, requested_by.strip())

    def _level_quantity(self, index: int, scale: int) -> Decimal:
        plan = self.exit_plan
        if plan is None:  # not reached: open() sets it
            raise InvalidTransition(f"position {self.position_id}", self.status.value, "size an exit before opening")
        sold_share = sum((plan.take_profits[i].sell_percent for i in range(index + 1)), Decimal(0))
        if sold_share >= HUNDRED:
            return self._all_out(scale)
        qty = round_down_to_scale(self.quantity * plan.take_profits[index].sell_percent / HUNDRED, scale)
        if qty <= 0 or qty >= self.remaining:
            return self._all_out(scale)
        return qty

    def _all_out(self, scale: int) -> Decimal:
        """Everything held that the exchange can sell: the remainder rounded down to the step
        (never up). Less than one step is left as it is: the exchange judges it."""
        sellable = round_down_to_scale(self.remaining, scale)
        return sellable if sellable > 0 else self.remaining

    def sellable_within(self, available: Decimal, quantity_scale: int | None = None) -> Decimal:
        """How much of an exit the account can carry when it holds only `available` of the coin:
        the smaller of that and what is held, rounded down to the step of `quantity_scale`
        decimals (default: the scale recorded at the fill); 0: nothing sellable."""
        scale = self.quantity_scale if quantity_scale is None else quantity_scale
        return max(round_down_to_scale(min(available, self.remaining), scale), Decimal(0))

    def below_one_step(self, quantity_scale: int) -> bool:
        """What is held is less than one step of `quantity_scale` decimals: no order can sell it."""
        return self.remaining > 0 and round_down_to_scale(self.remaining, quantity_scale) <= 0

    # --- commands -------------------------------------------------------------------

    def observe(self, price: Decimal, cause: Cause) -> None:
        """Follow the peak for a trailing stop; recorded so a restart keeps it."""
        plan = self.exit_plan
        if self.status is PositionStatus.CLOSED or plan is None or plan.trailing_stop_percent is None:
            return
        if price > self.peak_price:
            self._record(PositionPeakRaised(self.position_id, price), cause)

    def submit_exit(self, decision: ExitDecision, cause: Cause) -> ClientOrderId:
        if self.status is PositionStatus.CLOSED:
            raise InvalidTransition(f"position {self.position_id}", "closed", "submit an exit")
        if self.pending_exit is not None:
            raise InvalidTransition(f"position {self.position_id}", "awaiting an exit fill", "submit another exit")
        if not (0 < decision.quantity <= self.remaining):
            raise InvalidValue(f"exit quantity {decision.quantity} is not within the {self.remaining} held")
        digest = hashlib.sha256(f"{self.position_id}:{self.exits}".encode()).hexdigest()[:24]
        coid = ClientOrderId("ext" + digest)
        self._record(
            ExitOrderSubmitted(
                self.position_id, coid.value, decision.reason.value, decision.level, decision.quantity,
                decision.trigger_price, decision.requested_by,
            ),
            cause,
        )
        return coid

    def record_exit_fill(
        self, price: Decimal, quantity: Decimal, fee: Decimal, cause: Cause, *, quantity_scale: int | None = None
    ) -> None:
        """Record the pending exit's fill. `quantity_scale`: the pair's step as the exchange
        states it; what is left below one step of it is written off as dust (no order can sell
        it). Without it nothing is written off: the scale recorded at the fill may be a guess,
        and coins a finer real step could sell stay open."""
        pending = self.pending_exit
        if pending is None:
            raise InvalidTransition(
                f"position {self.position_id}", self.status.value, "record an exit fill without an order"
            )
        self._record_fill(pending, price, quantity, fee, cause, quantity_scale)

    def record_late_exit_fill(
        self, client_order_id: str, price: Decimal, quantity: Decimal, fee: Decimal, cause: Cause, *,
        quantity_scale: int | None = None,
    ) -> None:
        """An exit recorded failed (refused, or not found past the grace) that the exchange shows
        filled after all: a sell whose reply was lost and that became visible late. It is the fill
        it was, at its own price and quantity, never a failure and never a loss of the coins."""
        submitted = self.failed_exits.get(client_order_id)
        if submitted is None:
            raise InvalidTransition(
                f"position {self.position_id}", self.status.value,
                f"record a late fill of {client_order_id}, not a failed exit",
            )
        if self.status is PositionStatus.CLOSED:
            raise InvalidTransition(f"position {self.position_id}", "closed", "record a late exit fill")
        self._record_fill(submitted, price, quantity, fee, cause, quantity_scale)

    def _record_fill(
        self, submitted: ExitOrderSubmitted, price: Decimal, quantity: Decimal, fee: Decimal, cause: Cause,
        quantity_scale: int | None,
    ) -> None:
        if price <= 0 or not (0 < quantity <= self.remaining) or fee < 0:
            raise InvalidValue(f"exit fill {quantity} at {price} does not fit the {self.remaining} held")
        proceeds = price * quantity
        closing = quantity == self.remaining
        released = self.remaining_cost if closing else quantize_money(self.remaining_cost * quantity / self.remaining)
        pnl = proceeds - fee - released
        kind = _FILL_EVENT[ExitReason(submitted.reason)]
        fields = (self.position_id, submitted.client_order_id, submitted.level, price, quantity, proceeds, fee,
                  released, pnl)
        if kind is ManualExitFilled:
            self._record(ManualExitFilled(*fields, requested_by=submitted.requested_by), cause)
        else:
            self._record(kind(*fields), cause)
        if closing:
            self._close(cause)
        elif quantity_scale is not None and self.pending_exit is None and self.below_one_step(quantity_scale):
            # Less than one step of the pair's real step is left (e.g. a buy fee taken from the coin).
            self._write_off(f"dust: {self.remaining} is below the step of {quantity_scale} decimals", cause)

    def write_off(self, reason: str, cause: Cause) -> None:
        """Close the position without selling what is left: it cannot be sold (below the pair's
        minimum, or not in the account). Its cost is booked as a loss; `reason` says why."""
        if self.status is PositionStatus.CLOSED:
            raise InvalidTransition(f"position {self.position_id}", "closed", "write off a remainder")
        if self.pending_exit is not None:
            raise InvalidTransition(f"position {self.position_id}", "awaiting an exit fill", "write off a remainder")
        if not reason.strip():
            raise InvalidValue("a write-off needs a reason")
        self._write_off(reason.strip(), cause)

    def _write_off(self, reason: str, cause: Cause) -> None:
        released = self.remaining_cost
        self._record(
            DustWrittenOff(self.position_id, "", None, Decimal(0), self.remaining, Decimal(0), Decimal(0), released,
                           -released, reason),
            cause,
        )
        self._close(cause)

    def _close(self, cause: Cause) -> None:
        closed = PositionClosed(self.position_id, self.total_cost, self.proceeds, self.fees, self.realised_pnl)
        self._record(closed, cause)

    def learn_entry_fee(self, fee: Decimal, fee_asset: str, cause: Cause) -> None:
        """The buy's fee, learnt after the fill was recorded without it (EntryFeeLearnt): the
        position takes it as it would have at the fill. A fee in the coin comes off what it holds;
        a quote fee adds to its cost; a third asset's leaves both (see `open`). Not while an exit is
        pending (the exit was sized on what the position holds now): learn it after that exit.

        Closed already (its exits sold before the fee was learnt), a fee in the coin changes
        nothing: an exit whose buy fee was unknown read the account's balance, sold what it held
        and wrote the rest off (DustWrittenOff), so the coins the fee took are out of the position
        and its P&L already. A quote fee was paid on top of everything the P&L counted: the closed
        position's realised P&L takes it. The same holds for the coins of an open position that a
        fee in the coin cannot come out of (it is not less than what is left): the exits' balance
        reads settle them."""
        if self.symbol is None:
            raise InvalidTransition(f"position {self.position_id}", "blank", "learn its entry fee")
        if self.entry_fee_known:
            raise InvalidTransition(
                f"position {self.position_id}", f"holding its entry fee in {self.entry_fee_asset}", "learn it again"
            )
        if self.pending_exit is not None:
            raise InvalidTransition(f"position {self.position_id}", "awaiting an exit fill", "learn its entry fee")
        if fee < 0 or not fee_asset:
            raise InvalidValue(f"a learnt entry fee is not negative and names its asset, got {fee} {fee_asset!r}")
        closed = self.status is PositionStatus.CLOSED
        quantity = cost = pnl = Decimal(0)
        if fee_asset == self.symbol.base:
            if not closed and fee < self.remaining:
                quantity = fee
        elif fee_asset == self.symbol.quote:
            cost = fee
            if closed:
                pnl = -fee
        self._record(EntryFeeLearnt(self.position_id, fee, fee_asset, quantity, cost, pnl), cause)

    def record_exit_failure(self, reason: str, cause: Cause) -> None:
        pending = self.pending_exit
        if pending is None:
            raise InvalidTransition(f"position {self.position_id}", self.status.value, "fail an exit it did not submit")
        self._record(ExitOrderFailed(self.position_id, pending.client_order_id, reason), cause)

    # --- fold -----------------------------------------------------------------------

    def _apply(self, event: DomainEvent) -> None:
        match event:
            case PositionOpened():
                self.position_id = event.position_id
                self.target_id = event.target_id
                self.symbol = Symbol.parse(event.symbol, event.quote_asset)
                self.entry_price = event.entry_price
                self.quantity = self.remaining = event.quantity
                self.total_cost = self.remaining_cost = event.cost
                # A fee paid in the base asset is already out of the quantity held.
                self.fees = event.entry_fee if event.entry_fee_asset == event.quote_asset else Decimal(0)
                self.quantity_scale = event.quantity_scale
                self.entry_fee_asset = event.entry_fee_asset
                self.exit_plan = event.exit_plan
                self.opened_at = event.opened_at
                self.peak_price = event.entry_price
                self.status = PositionStatus.OPEN
            case PositionPeakRaised():
                self.peak_price = event.peak_price
            case EntryFeeLearnt():
                self.quantity -= event.quantity
                self.remaining -= event.quantity
                self.total_cost += event.cost
                self.remaining_cost += event.cost + event.realised_pnl
                self.fees += event.cost
                self.realised_pnl += event.realised_pnl
                self.entry_fee_asset = event.fee_asset
            case ExitOrderSubmitted():
                self.pending_exit = event
                self.exits += 1
            case ExitOrderFailed():
                if self.pending_exit is not None:
                    self.failed_exits[self.pending_exit.client_order_id] = self.pending_exit
                    while len(self.failed_exits) > _FAILED_KEPT:
                        del self.failed_exits[next(iter(self.failed_exits))]
                self.pending_exit = None
            case DustWrittenOff():
                self.remaining -= event.quantity
                self.remaining_cost -= event.cost_released
                self.realised_pnl += event.realised_pnl
                self.status = PositionStatus.CLOSED if self.remaining == 0 else PositionStatus.PARTIALLY_EXITED
            case ExitFilled():
                # A late fill of an earlier (failed) exit leaves a pending one alone.
                if self.pending_exit is not None and self.pending_exit.client_order_id == event.client_order_id:
                    self.pending_exit = None
                self.failed_exits.pop(event.client_order_id, None)
                if isinstance(event, TakeProfitHit) and event.level is not None:
                    self.levels_hit.add(event.level)
                self.remaining -= event.quantity
                self.remaining_cost -= event.cost_released
                self.proceeds += event.proceeds
                self.fees += event.fee
                self.realised_pnl += event.realised_pnl
                self.status = PositionStatus.CLOSED if self.remaining == 0 else PositionStatus.PARTIALLY_EXITED
            case PositionClosed():
                self.status = PositionStatus.CLOSED
            case _:
                raise TypeError(f"position cannot apply {type(event).__name__}")

